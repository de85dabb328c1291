// The switch for programmatic dependent launch of the decode kernels (pdl.cuh says what it does), callable
// from host C++.
#pragma once

namespace runtime::cuda {

// Whether decode kernels are launched with the programmatic attribute: GGUF_CUDA_PDL=1 on a device of
// compute capability 9.0 or later (read once at first use; set_pdl overrides it, for tests and
// benchmarks, and stays off on older devices).
bool pdl_enabled();
void set_pdl(bool on);

}  // namespace runtime::cuda
