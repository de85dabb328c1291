#!/usr/bin/env bash
# Configures and builds into build/ (Release). CUDA is enabled when nvcc is found; GGUF_CUDA_ARCHS (e.g.
# "90" or "86;89") limits the GPU architectures compiled for, which otherwise are 80, 86, 89 and 90.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${GGUF_CUDA_ARCHS:+"-DCMAKE_CUDA_ARCHITECTURES=$GGUF_CUDA_ARCHS"} "$@" >/dev/null
cmake --build build
