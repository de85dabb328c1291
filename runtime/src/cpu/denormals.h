// Subnormal floats on the threads that run the CPU backend's math: results flushed to zero (FTZ) and
// operands read as zero (DAZ).
//
// Why: an Intel core takes a microcode assist, on the order of a hundred cycles, for an SSE/AVX operation
// whose result is subnormal. A quantized dot product multiplies a weight block's scale by the activation
// block's scale once per block; where activations are tiny that product falls below 1.2e-38 on every
// block. On the GPU machine's Xeon host the synthetic Qwen3-30B-A3B (whose expert hidden rows are about
// 1e-33) ran the experts' down rows five times slower than the same bytes with ordinary activations
// (565 vs 110 us a layer at 16 threads; docs/benchmarks.md); Zen 4 showed nothing. Values below 1.2e-38
// carry nothing a model's logits can show, so the runtime gives them up, as most inference engines do.
#pragma once

namespace runtime::cpu {

// Sets FTZ and DAZ on the calling thread and on every thread of an OpenMP team of n_threads (the
// team's threads persist between parallel regions, so the backend's later regions of up to that size
// run on them). A no-op where the instruction set has no such modes.
void flush_denormals(int n_threads);

// Whether the calling thread flushes subnormal results to zero and reads subnormal operands as zero.
bool flushes_denormals();

}  // namespace runtime::cpu
