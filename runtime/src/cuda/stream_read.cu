// The streaming-read kernel that measures how fast a device reads its own memory.
#include "cuda/stream_read.h"

namespace runtime::cuda {

namespace {

// Reads every float4 of `data` and folds it into one value per thread block so that the loads
// cannot be optimized away.
__global__ void stream_read(const float4* data, size_t n, float* block_sums) {
    float acc = 0.f;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        const float4 v = data[i];
        acc += v.x + v.y + v.z + v.w;
    }
    __shared__ float partial[256];
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) block_sums[blockIdx.x] = partial[0];
}

}  // namespace

void launch_stream_read(const void* data, size_t n_float4, float* block_sums, int blocks, int threads,
                        cudaStream_t stream) {
    stream_read<<<blocks, threads, 0, stream>>>(static_cast<const float4*>(data), n_float4, block_sums);
}

}  // namespace runtime::cuda
