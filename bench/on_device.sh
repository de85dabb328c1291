#!/usr/bin/env bash
# Runs on the GPU machine from the repository root (bench/device_kit.sh packed .devkit/): the gpu-labelled
# test, the device probe, quantizes the tiny models to Q8_0 and Q4_K_M, and benchmarks gguf-run and
# libquant at 1, 2 and all threads. Everything printed goes to $OUT/bench.log too.
set -uo pipefail
kit=.devkit
export LD_LIBRARY_PATH=$PWD/$kit/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
out=${OUT:-/tmp}
exec > >(tee "$out/bench.log") 2>&1
echo "== machine"; lscpu | grep -E '^Model name|^CPU\(s\)'; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== gpu tests"; $kit/bin/runtime_gpu_info_device_test --gtest_brief=1
$kit/bin/runtime_cuda_ops_test --gtest_brief=1
echo "== cuda-ops-bench"; $kit/bin/cuda-ops-bench
echo "== devices"; $kit/bin/gguf-run devices --bandwidth
m=$kit/models
for model in tiny-dense tiny-moe; do
  for t in Q8_0 Q4_K_M; do $kit/bin/gguf-quantize "$m/$model-bf16.gguf" "$m/$model-${t,,}.gguf" $t >/dev/null; done
done
echo "== gguf-run bench"
for f in tiny-dense-bf16 tiny-dense-q8_0 tiny-dense-q4_k_m tiny-moe-bf16 tiny-moe-q8_0 tiny-moe-q4_k_m; do
  for t in 1 2 ${BENCH_MAX_THREADS:-$(nproc)}; do
    $kit/bin/gguf-run bench -m "$m/$f.gguf" -p 512 -n 128 -r 5 -t $t 2>/dev/null | grep -E '^\| [a-z]' | grep -v model
  done
done
echo "== quant-bench"; $kit/bin/quant-bench ${QUANT_BENCH_ARGS:-}
