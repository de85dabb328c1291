#!/usr/bin/env bash
# Packs what the benchmarks need on the GPU machine into .devkit/ (git-ignored, carried by the device
# tool): the Release binaries built here, the shared libraries they need that the machine's image lacks
# (xxHash, libgomp, libstdc++), the tiny fixture models, and bench/on_device.sh;
# gguf-synth and gguf-inspect for bench/cpu_at_scale.sh, which generates its 17 GB model there.
# That machine has the CUDA toolkit but no GoogleTest, so nothing is built there.
# Usage: bench/device_kit.sh [BUILD_DIR]   (default build/, configured with CUDA)
# CPU=1 packs a CPU-only build (no CUDA targets; enough for bench/cpu_at_scale.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shared=${GGUF_SHARED_DIR:-../shared}
cpu_targets="gguf-run gguf-quantize gguf-verify gguf-inspect gguf-synth quant-bench cpu-moe-bench"
cuda_targets="gguf-cuda runtime_gpu_info_device_test runtime_cuda_matmul_test cuda-matmul-bench runtime_cuda_ops_test cuda-ops-bench
  runtime_cuda_backend_test"
if [ -n "${CPU:-}" ]; then
  cmake --build "$build" --target $cpu_targets
else
  cmake --build "$build" --target $cpu_targets $cuda_targets
  "$build/apps/gguf-run/gguf-run" devices --json | grep -q '"cuda_build": true' ||
    { echo "error: $build is not a CUDA build (CPU=1 packs a CPU-only one)" >&2; exit 1; }
fi
rm -rf .devkit && mkdir -p .devkit/bin .devkit/lib .devkit/models
cp "$build/apps/gguf-run/gguf-run" "$build/apps/gguf-quantize/gguf-quantize" "$build/libquant/quant-bench" \
   "$build/apps/gguf-inspect/gguf-inspect" "$build/apps/gguf-verify/gguf-verify" "$build/bench/gguf-synth" \
   "$build/runtime/cpu-moe-bench" .devkit/bin/
if [ -z "${CPU:-}" ]; then
  cp "$build/tests/runtime/runtime_gpu_info_device_test" "$build/tests/runtime/runtime_cuda_matmul_test" \
     "$build/runtime/cuda-matmul-bench" \
     "$build/tests/runtime/runtime_cuda_ops_test" "$build/runtime/cuda-ops-bench" \
     "$build/tests/runtime/runtime_cuda_backend_test" .devkit/bin/
fi
# host read bandwidth for bench/verify_scan.sh; AVX2 rather than -march=native: it runs on another CPU
gcc -O3 -mavx2 -mfma -fopenmp "$shared/tools/hostbw.c" -o .devkit/bin/hostbw
strip .devkit/bin/*
# the CUDA backend, opened at run time from ../lib beside the binaries (runtime/src/cuda_module.h)
if [ -z "${CPU:-}" ]; then
  cp "$build/lib/libgguf-cuda.so" .devkit/lib/ && strip --strip-unneeded .devkit/lib/libgguf-cuda.so
fi
for lib in libxxhash.so.0 libgomp.so.1 libstdc++.so.6; do
  cp -L "/lib/x86_64-linux-gnu/$lib" .devkit/lib/
done
cp "$shared/fixtures/gguf/tiny-dense-bf16.gguf" "$shared/fixtures/gguf/tiny-moe-bf16.gguf" .devkit/models/
cp bench/on_device.sh bench/cuda_kernels_on_device.sh .devkit/
du -sh .devkit
