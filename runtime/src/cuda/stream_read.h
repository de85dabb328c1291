// Kernels of the GPU probes, callable from host C++ (the .cu files build as C++17, the rest as C++20).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace runtime::cuda {

// Reads n_float4 float4 values from device memory and writes one partial sum per block into
// block_sums (at least `blocks` floats); `threads` must be 256.
void launch_stream_read(const void* data, size_t n_float4, float* block_sums, int blocks, int threads,
                        cudaStream_t stream = nullptr);

}  // namespace runtime::cuda
