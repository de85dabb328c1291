// RMSNorm over rows and over the heads of a row (the Q/K norms).
#include "cuda/pdl.cuh"
#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"
#include "cuda/q8_1_block.cuh"

namespace runtime::cuda {

namespace {

constexpr int kNormThreads = 256;

// Sum over the block of one double per thread; every thread gets the result.
__device__ double block_sum(double v) {
    __shared__ double partial[kNormThreads / 32];
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    double total = 0.0;
    for (int w = 0; w < kNormThreads / 32; ++w) total += partial[w];
    return total;
}

// Elements per thread held in registers: rows of up to kNormThreads * kNormPer elements are read once,
// with every load of a thread issued before the first use (a loop that adds each value as it arrives
// waits a full memory latency per element, which made this one-block kernel slow).
constexpr int kNormPer = 8;

// One block per row. With y, x += y first (written back; each thread reads back only the elements it
// wrote). The scale is computed as on the CPU (double sum of squares in element order per thread,
// 1/sqrt in double, rounded to float) and applied as (x * scale) * w, each product rounded.
// With xq (n a multiple of 32), the normalised row is also quantized to q8_1: in the last loop each warp
// holds 32 consecutive elements per step (the stride, 256, is a multiple of 32), one q8_1 block.
__device__ __forceinline__ void store_normed(float v, int64_t i, float* o, BlockQ8_1* xq_row) {
    o[i] = v;
    if (xq_row) quantize_block_q8_1(v, static_cast<int>(i % 32), xq_row[i / 32]);
}

__device__ __forceinline__ void norm_row(float* x, const float* y, const float* w, float* o, int64_t n, float eps,
                                         BlockQ8_1* xq_row) {
    double ss = 0.0;
    float v[kNormPer], yv[kNormPer], wv[kNormPer];
    const bool held = n <= kNormThreads * kNormPer;
    for (int64_t base = 0; base < n; base += kNormThreads * kNormPer) {
        // every load of the pass before the first store: x += y writes x, and a y load after that store
        // could not be moved above it (x and y may alias as far as the compiler knows), which made each
        // element a full memory latency; the norm's weights too, when the row is held
#pragma unroll
        for (int j = 0; j < kNormPer; ++j) {
            const int64_t i = base + j * kNormThreads + threadIdx.x;
            v[j] = i < n ? x[i] : 0.f;
            if (y) yv[j] = i < n ? y[i] : 0.f;
            if (held) wv[j] = w && i < n ? w[i] : 1.f;
        }
        if (y) {
#pragma unroll
            for (int j = 0; j < kNormPer; ++j) {
                const int64_t i = base + j * kNormThreads + threadIdx.x;
                if (i < n) {
                    v[j] = __fadd_rn(v[j], yv[j]);
                    x[i] = v[j];
                }
            }
        }
#pragma unroll
        for (int j = 0; j < kNormPer; ++j) {
            if (base + j * kNormThreads + threadIdx.x < n) ss += static_cast<double>(v[j]) * v[j];
        }
    }
    ss = block_sum(ss);
    const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(n) + eps));
    if (held) {
#pragma unroll
        for (int j = 0; j < kNormPer; ++j) {
            const int64_t i = j * kNormThreads + threadIdx.x;
            const float s = __fmul_rn(v[j], scale);
            if (i < n) store_normed(w ? __fmul_rn(s, wv[j]) : s, i, o, xq_row);
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < n; i += kNormThreads) {
        const float s = __fmul_rn(x[i], scale);
        store_normed(w ? __fmul_rn(s, w[i]) : s, i, o, xq_row);
    }
}

__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const float* x, int64_t ldx, const float* w, float* y,
                                                                 int64_t ldy, int64_t n, float eps, BlockQ8_1* xq) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    // x is only read here (no y to add)
    norm_row(const_cast<float*>(x + blockIdx.x * ldx), nullptr, w, y + blockIdx.x * ldy, n, eps,
             xq ? xq + blockIdx.x * (n / 32) : nullptr);
}

// x += y, then the norm of the sum.
__global__ void __launch_bounds__(kNormThreads) add_rms_norm_kernel(float* x, int64_t ldx, const float* y, int64_t ldy,
                                                                     const float* w, float* out, int64_t ldo, int64_t n,
                                                                     float eps, BlockQ8_1* xq) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    norm_row(x + blockIdx.x * ldx, y + blockIdx.x * ldy, w, out + blockIdx.x * ldo, n, eps,
             xq ? xq + blockIdx.x * (n / 32) : nullptr);
}

constexpr int kHeadWarps = 4;

// One warp per (token, head), in place.
__global__ void rms_norm_heads_kernel(float* x, int64_t ldx, const float* w, int n_tok, int n_head, int head_dim,
                                      float eps) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int item = blockIdx.x * kHeadWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (item >= n_tok * n_head) return;
    float* h = x + (item / n_head) * ldx + static_cast<int64_t>(item % n_head) * head_dim;
    double ss = 0.0;
    for (int i = lane; i < head_dim; i += 32) ss += static_cast<double>(h[i]) * h[i];
    for (int o = 16; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(head_dim) + eps));
    for (int i = lane; i < head_dim; i += 32) {
        const float v = __fmul_rn(h[i], scale);
        h[i] = w ? __fmul_rn(v, w[i]) : v;
    }
}

}  // namespace

void rms_norm(const float* x, int64_t ldx, const float* w, float* y, int64_t ldy, int64_t n, int n_rows, float eps,
              cudaStream_t stream, void* xq) {
    if (n_rows <= 0 || n <= 0) return;
    if (xq && n % 32 != 0) throw Error("rms_norm: a q8_1 copy needs n a multiple of 32, not " + std::to_string(n));
    pdl_launch(rms_norm_kernel, n_rows, kNormThreads, 0, stream)(x, ldx, w, y, ldy, n, eps, static_cast<BlockQ8_1*>(xq));
    detail::check_launch("rms_norm");
}

void add_rms_norm(float* x, int64_t ldx, const float* y, int64_t ldy, const float* w, float* out, int64_t ldo,
                  int64_t n, int n_rows, float eps, cudaStream_t stream, void* xq) {
    if (n_rows <= 0 || n <= 0) return;
    if (xq && n % 32 != 0) throw Error("add_rms_norm: a q8_1 copy needs n a multiple of 32, not " + std::to_string(n));
    pdl_launch(add_rms_norm_kernel, n_rows, kNormThreads, 0, stream)(x, ldx, y, ldy, w, out, ldo, n, eps,
                                                             static_cast<BlockQ8_1*>(xq));
    detail::check_launch("add_rms_norm");
}

void rms_norm_heads(float* x, int64_t ldx, const float* w, int n_tok, int n_head, int head_dim, float eps,
                    cudaStream_t stream) {
    if (n_tok <= 0 || n_head <= 0) return;
    if (head_dim <= 0 || head_dim > 1024) throw Error("rms_norm_heads: head size " + std::to_string(head_dim) + " unsupported");
    pdl_launch(rms_norm_heads_kernel, detail::blocks_for(static_cast<int64_t>(n_tok) * n_head, kHeadWarps), kHeadWarps * 32, 0,
                            stream)(x, ldx, w, n_tok, n_head, head_dim, eps);
    detail::check_launch("rms_norm_heads");
}

}  // namespace runtime::cuda
