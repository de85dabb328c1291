// The switch for programmatic dependent launch of the decode kernels (pdl.cuh says what it does), callable
// from host C++.
#pragma once

namespace runtime::cuda {

// Whether decode kernels are launched with the programmatic attribute: on a device of compute capability
// 9.0 or later unless GGUF_CUDA_PDL=0 (read once at first use; set_pdl overrides it, for tests and
// benchmarks, and stays off on older devices). On the H200 it took whole-GPU decode of the synthetic
// Qwen3-30B-A3B from 217.8 to 255.3 tok/s with logits and perplexity as without (docs/benchmarks.md).
bool pdl_enabled();
void set_pdl(bool on);

}  // namespace runtime::cuda
