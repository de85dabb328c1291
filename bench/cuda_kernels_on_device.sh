#!/usr/bin/env bash
# Runs on the GPU machine from the repository root (bench/device_kit.sh packed .devkit/): the CUDA matrix
# kernels' gpu test (every failure listed) and their benchmark (docs/cuda-kernels.md). Output also goes
# to $OUT/cuda_kernels.log.
set -uo pipefail
kit=.devkit
export LD_LIBRARY_PATH=$PWD/$kit/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
out=${OUT:-/tmp}
exec > >(tee "$out/cuda_kernels.log") 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== runtime_cuda_matmul_test"; $kit/bin/runtime_cuda_matmul_test; echo "exit status $?"
echo "== cuda-matmul-bench"; $kit/bin/cuda-matmul-bench; echo "exit status $?"
