#!/usr/bin/env bash
# The benchmark's peer: llama-cpp-python's own OpenAI-compatible server (with its RAM prompt cache), in its
# own virtualenv so its web stack never touches cachepoint's pins. Reuses the llama.cpp wheel setup.sh built.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CPU=$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-12)
WHEELS=${CACHEPOINT_WHEELS:-$HOME/.cache/cachepoint/wheels-$(uname -m)-$CPU}
VENV=$HOME/.cache/cachepoint/peer-llama-server-$CPU
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp.server.app" 2>/dev/null; then
  $PY -m venv "$VENV"
  "$VENV/bin/pip" install -q --find-links "$WHEELS" "llama-cpp-python[server]==0.3.36"
fi
echo "$VENV/bin/python"
