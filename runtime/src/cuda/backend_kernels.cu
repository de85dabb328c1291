#include <cuda_fp16.h>

#include "cuda/backend_kernels.h"

namespace runtime::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void to_f16(const float* x, int64_t ld_x, int64_t n, const int32_t* rows, __half* out) {
    const int64_t r = blockIdx.y;
    const float* src = x + (rows ? rows[r] : r) * ld_x;
    __half* dst = out + r * n;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        dst[i] = __float2half_rn(src[i]);
    }
}

__global__ void scatter(const float* src, int64_t ld_src, const int32_t* dst_rows, int64_t n, float* dst,
                        int64_t ld_dst) {
    const int64_t r = blockIdx.y;
    const float* s = src + r * ld_src;
    float* d = dst + dst_rows[r] * ld_dst;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        d[i] = s[i];
    }
}

__global__ void widen(const uint16_t* src, bool bf16, int64_t n, float* out) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const uint16_t h = src[i];
        out[i] = bf16 ? __uint_as_float(static_cast<uint32_t>(h) << 16) : __half2float(__ushort_as_half(h));
    }
}

dim3 grid_for(int64_t n, int n_rows) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return dim3(static_cast<unsigned>(blocks < 64 ? blocks : 64), static_cast<unsigned>(n_rows));
}

}  // namespace

void f32_to_f16_rows(const float* x, int64_t ld_x, int64_t n, int n_rows, uint16_t* out, cudaStream_t stream) {
    if (n_rows == 0) return;
    to_f16<<<grid_for(n, n_rows), kThreads, 0, stream>>>(x, ld_x, n, nullptr, reinterpret_cast<__half*>(out));
}

void gather_rows_f16(const float* x, int64_t ld_x, const int32_t* rows, int n_rows, int64_t n, uint16_t* out,
                     cudaStream_t stream) {
    if (n_rows == 0) return;
    to_f16<<<grid_for(n, n_rows), kThreads, 0, stream>>>(x, ld_x, n, rows, reinterpret_cast<__half*>(out));
}

void widen_to_f32(const uint16_t* src, bool bf16, int64_t n, float* out, cudaStream_t stream) {
    if (n == 0) return;
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    widen<<<static_cast<unsigned>(blocks < 4096 ? blocks : 4096), kThreads, 0, stream>>>(src, bf16, n, out);
}

void scatter_rows(const float* src, int64_t ld_src, const int32_t* dst_rows, int n_rows, int64_t n, float* dst,
                  int64_t ld_dst, cudaStream_t stream) {
    if (n_rows == 0) return;
    scatter<<<grid_for(n, n_rows), kThreads, 0, stream>>>(src, ld_src, dst_rows, n, dst, ld_dst);
}

}  // namespace runtime::cuda
