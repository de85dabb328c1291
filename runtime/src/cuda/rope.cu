// Rotary position embedding in place, with the position read from device memory (graph replay).
#include "cuda/pdl.cuh"
#include "cuda/head_ops.cuh"
#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"

namespace runtime::cuda {

namespace {

// One thread per (token, pair): the angle is computed once (in double, as context.cpp) and applied to
// every head. x0*c - x1*s and x0*s + x1*c with each product rounded, as the CPU (no fused multiply-add).
__global__ void rope_kernel(float* x, int64_t ldx, int n_tok, int n_head, int head_dim, int half, bool neox,
                            const int32_t* pos0_dev, const double* inv_freq) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (item >= static_cast<int64_t>(n_tok) * half) return;
    const int t = static_cast<int>(item / half), i = static_cast<int>(item % half);
    const double theta = static_cast<double>(*pos0_dev + t) * inv_freq[i];
    double sd, cd;
    sincos(theta, &sd, &cd);
    const float c = static_cast<float>(cd), s = static_cast<float>(sd);
    const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
    float* row = x + t * ldx;
    for (int h = 0; h < n_head; ++h) {
        float* hd = row + static_cast<int64_t>(h) * head_dim;
        const float x0 = hd[i0], x1 = hd[i1];
        hd[i0] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        hd[i1] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
}

constexpr int kHeadWarps = 4;

// One warp per (token, head) of Q then K: the norm (as rms_norm_heads), then the rotation (as rope_kernel).
__global__ void norm_rope_qk_kernel(float* q, int64_t ldq, int n_head, const float* q_norm, float* k, int64_t ldk,
                                    int n_head_kv, const float* k_norm, int n_tok, int head_dim, float eps, int half,
                                    bool neox, const int32_t* pos0_dev, const double* inv_freq) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int item = blockIdx.x * kHeadWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n_q = n_tok * n_head;
    if (item >= n_q + n_tok * n_head_kv) return;
    const bool is_q = item < n_q;
    const int it = is_q ? item : item - n_q;
    const int heads = is_q ? n_head : n_head_kv;
    const int t = it / heads;
    float* hd = (is_q ? q + t * ldq : k + t * ldk) + static_cast<int64_t>(it % heads) * head_dim;
    detail::norm_rope_head(hd, is_q ? q_norm : k_norm, head_dim, eps, half, neox, static_cast<double>(*pos0_dev + t),
                           inv_freq, lane);
}

}  // namespace

void norm_rope_qk(float* q, int64_t ldq, int n_head, const float* q_norm, float* k, int64_t ldk, int n_head_kv,
                  const float* k_norm, int n_tok, int head_dim, float eps, int n_rot, bool neox,
                  const int32_t* pos0_dev, const double* inv_freq, cudaStream_t stream) {
    if (n_tok <= 0) return;
    if (n_rot % 2 != 0 || n_rot > head_dim || n_rot < 0 || head_dim > 1024) {
        throw Error("norm_rope_qk: " + std::to_string(n_rot) + " rotated dimensions do not fit heads of " +
                    std::to_string(head_dim));
    }
    const int64_t items = static_cast<int64_t>(n_tok) * (n_head + n_head_kv);
    pdl_launch(norm_rope_qk_kernel, detail::blocks_for(items, kHeadWarps), kHeadWarps * 32, 0, stream)(
        q, ldq, n_head, q_norm, k, ldk, n_head_kv, k_norm, n_tok, head_dim, eps, n_rot / 2, neox, pos0_dev, inv_freq);
    detail::check_launch("norm_rope_qk");
}

void rope(float* x, int64_t ldx, int n_tok, int n_head, int head_dim, int n_rot, bool neox, const int32_t* pos0_dev,
          const double* inv_freq, cudaStream_t stream) {
    if (n_tok <= 0 || n_head <= 0 || n_rot <= 0) return;
    if (n_rot % 2 != 0 || n_rot > head_dim) {
        throw Error("rope: " + std::to_string(n_rot) + " rotated dimensions do not fit heads of " +
                    std::to_string(head_dim));
    }
    const int half = n_rot / 2;
    constexpr int kThreads = 128;
    pdl_launch(rope_kernel, detail::blocks_for(static_cast<int64_t>(n_tok) * half, kThreads), kThreads, 0, stream)(
        x, ldx, n_tok, n_head, head_dim, half, neox, pos0_dev, inv_freq);
    detail::check_launch("rope");
}

}  // namespace runtime::cuda
