// MoE routing on the device: probabilities, top-k (ties to the lower index) and the expert weights,
// following moe.cpp's route() step by step.
#include <cmath>

#include "cuda/pdl.cuh"
#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"

namespace runtime::cuda {

namespace {

constexpr int kMaxExperts = 512;
constexpr int kMaxK = 32;
constexpr int kTokensPerBlock = 4;  // one warp per token

// One token's routing by one warp: x its n_expert logits (read through L2: the fused router writes them
// from other blocks of the same launch), probs n_expert floats of scratch (shared memory).
__device__ void route_one(const float* x, float* probs, int lane, int n_expert, int k, bool sigmoid, bool normalize,
                          float scale, int32_t* ids, float* weights) {
    // the logits to shared memory first, four loads per lane in flight at a time
    float mx = -INFINITY;
    for (int e0 = 0; e0 < n_expert; e0 += 4 * 32) {
        float v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int e = e0 + 32 * u + lane;
            v[u] = e < n_expert ? __ldcg(x + e) : -INFINITY;
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int e = e0 + 32 * u + lane;
            if (e < n_expert) probs[e] = v[u];
            mx = fmaxf(mx, v[u]);
        }
    }
    if (sigmoid) {
        for (int e = lane; e < n_expert; e += 32) probs[e] = 1.f / (1.f + expf(-probs[e]));
    } else {
        // softmax as cpu::softmax: exponentials of x - max, their sum in double, one float reciprocal
        for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        double sum = 0.0;
        for (int e = lane; e < n_expert; e += 32) {
            probs[e] = expf(probs[e] - mx);
            sum += probs[e];
        }
        for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = static_cast<float>(1.0 / sum);
        for (int e = lane; e < n_expert; e += 32) probs[e] = __fmul_rn(probs[e], inv);
    }
    __syncwarp();
    // k rounds of a warp arg-max; a chosen expert's probability becomes -1 (all are >= 0)
    int chosen_id = 0;        // lane j keeps the j-th choice
    float chosen_p = 0.f;
    for (int j = 0; j < k; ++j) {
        float best = -2.f;
        int best_e = n_expert;
        for (int e = lane; e < n_expert; e += 32) {
            if (probs[e] > best) {  // ascending e per lane: the first of equal values wins
                best = probs[e];
                best_e = e;
            }
        }
        for (int o = 16; o > 0; o /= 2) {
            const float ob = __shfl_xor_sync(0xffffffffu, best, o);
            const int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
            if (ob > best || (ob == best && oe < best_e)) {
                best = ob;
                best_e = oe;
            }
        }
        if (lane == j) {
            chosen_id = best_e;
            chosen_p = best;
        }
        __syncwarp();
        if (lane == 0) probs[best_e] = -1.f;
        __syncwarp();
    }
    // the sum of the chosen probabilities in choice order, in float, as moe.cpp
    float sum = 0.f;
    for (int j = 0; j < k; ++j) sum = __fadd_rn(sum, __shfl_sync(0xffffffffu, chosen_p, j));
    const float norm = normalize ? 1.f / fmaxf(sum, 6.103515625e-5f) : 1.f;
    const bool scaled = scale != 0.f && scale != 1.f;
    if (lane < k) {
        ids[lane] = chosen_id;
        weights[lane] = __fmul_rn(__fmul_rn(chosen_p, norm), scaled ? scale : 1.f);
    }
}

__global__ void route_kernel(const float* logits, int64_t ld, int n_tok, int n_expert, int k, bool sigmoid,
                             bool normalize, float scale, int32_t* ids, float* weights) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    __shared__ float probs_all[kTokensPerBlock][kMaxExperts];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int t = blockIdx.x * kTokensPerBlock + warp;
    if (t >= n_tok) return;  // whole warps leave; the block never synchronises
    route_one(logits + t * ld, probs_all[warp], lane, n_expert, k, sigmoid, normalize, scale, ids + t * k,
              weights + t * k);
}

constexpr int kRouterWarps = 8;     // warps per block of the fused router
constexpr int kRowWarps = 4;        // warps that share one logit row, each a quarter of it
constexpr int kRowsPerBlock = kRouterWarps / kRowWarps;
constexpr int kRouterMaxTokens = 8;

// Block b: logit rows e = b * 2 + r of every token, row r by warps 4r .. 4r + 3, each over a quarter of
// the inputs with all of its loads in flight at once (f32 weights, float4 loads where aligned): a row by
// one warp waited for four round trips to memory one after the other. The quarters are added in a fixed
// order. The last block to finish (counted in *counter, which it resets) routes every token, a warp per
// token.
template <bool kAligned>
__global__ void __launch_bounds__(kRouterWarps * 32) router_kernel(const float* W, int64_t n_in, const float* x,
                                                                   int64_t ldx, int n_tok, int n_expert, int k,
                                                                   bool sigmoid, bool normalize, float scale,
                                                                   float* logits, int64_t ld, int32_t* counter,
                                                                   int32_t* ids, float* weights) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    __shared__ float probs_all[kRouterWarps][kMaxExperts];
    __shared__ float part[kRouterWarps][kRouterMaxTokens];
    __shared__ bool last;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row = warp / kRowWarps, quarter = warp % kRowWarps;
    const int e = blockIdx.x * kRowsPerBlock + row;
    float acc[kRouterMaxTokens] = {};
    if (e < n_expert) {
        const float* w_row = W + e * n_in;
        if constexpr (kAligned) {
            // this warp's quarter of the row's float4s, up to four per lane in flight at a time
            const int64_t n4 = n_in / 4, q0 = n4 * quarter / kRowWarps, q1 = n4 * (quarter + 1) / kRowWarps;
            const float4* w4 = reinterpret_cast<const float4*>(w_row);
            for (int64_t c0 = q0 + lane; c0 < q1; c0 += 4 * 32) {
                float4 w[4];
#pragma unroll
                for (int u = 0; u < 4; ++u) w[u] = c0 + 32 * u < q1 ? w4[c0 + 32 * u] : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const int64_t c = c0 + 32 * u;
#pragma unroll
                    for (int t = 0; t < kRouterMaxTokens; ++t) {
                        if (t < n_tok && c < q1) {
                            const float4 v = reinterpret_cast<const float4*>(x + t * ldx)[c];
                            acc[t] += w[u].x * v.x + w[u].y * v.y + w[u].z * v.z + w[u].w * v.w;
                        }
                    }
                }
            }
        } else {
            const int64_t q0 = n_in * quarter / kRowWarps, q1 = n_in * (quarter + 1) / kRowWarps;
            for (int64_t i = q0 + lane; i < q1; i += 32) {
                const float w = w_row[i];
#pragma unroll
                for (int t = 0; t < kRouterMaxTokens; ++t) {
                    if (t < n_tok) acc[t] += w * x[t * ldx + i];
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < kRouterMaxTokens; ++t) {
        float v = acc[t];
        for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) part[warp][t] = v;
    }
    __syncthreads();
    // a row's quarters in order, by the first lanes of its first warp
    if (quarter == 0 && lane < n_tok && e < n_expert) {
        float v = part[warp][lane];
        for (int q = 1; q < kRowWarps; ++q) v += part[warp + q][lane];
        logits[lane * ld + e] = v;
    }
    __threadfence();  // the logits visible before this block is counted
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counter, 1) == static_cast<int>(gridDim.x) - 1;
    __syncthreads();
    if (!last) return;
    for (int t = warp; t < n_tok; t += kRouterWarps) {
        route_one(logits + t * ld, probs_all[warp], lane, n_expert, k, sigmoid, normalize, scale, ids + t * k,
                  weights + t * k);
    }
    if (threadIdx.x == 0) *counter = 0;  // ready for the next launch
}

}  // namespace

void route_topk(const float* logits, int64_t ld, int n_tok, int n_expert, int k, bool sigmoid, bool normalize,
                float scale, int32_t* ids, float* weights, cudaStream_t stream) {
    if (n_tok <= 0) return;
    if (n_expert < 1 || n_expert > kMaxExperts || k < 1 || k > kMaxK || k > n_expert) {
        throw Error("route_topk: " + std::to_string(k) + " of " + std::to_string(n_expert) +
                    " experts unsupported (at most 32 of 512)");
    }
    pdl_launch(route_kernel, detail::blocks_for(n_tok, kTokensPerBlock), kTokensPerBlock * 32, 0, stream)(
        logits, ld, n_tok, n_expert, k, sigmoid, normalize, scale, ids, weights);
    detail::check_launch("route_topk");
}

void router_topk_f32(const float* W, int64_t n_in, const float* x, int64_t ldx, int n_tok, int n_expert, int k,
                     bool sigmoid, bool normalize, float scale, float* logits, int64_t ld, int32_t* counter,
                     int32_t* ids, float* weights, cudaStream_t stream) {
    if (n_tok <= 0) return;
    if (n_tok > kRouterMaxTokens) throw Error("router_topk_f32: more than 8 tokens");
    if (n_expert < 1 || n_expert > kMaxExperts || k < 1 || k > kMaxK || k > n_expert) {
        throw Error("router_topk_f32: " + std::to_string(k) + " of " + std::to_string(n_expert) +
                    " experts unsupported (at most 32 of 512)");
    }
    const bool aligned = n_in % 4 == 0 && ldx % 4 == 0 && reinterpret_cast<uintptr_t>(W) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(x) % 16 == 0;
    const unsigned blocks = detail::blocks_for(n_expert, kRowsPerBlock);
    if (aligned) {
        pdl_launch(router_kernel<true>, blocks, kRouterWarps * 32, 0, stream)(W, n_in, x, ldx, n_tok, n_expert, k, sigmoid,
                                                                     normalize, scale, logits, ld, counter, ids, weights);
    } else {
        pdl_launch(router_kernel<false>, blocks, kRouterWarps * 32, 0, stream)(W, n_in, x, ldx, n_tok, n_expert, k, sigmoid,
                                                                      normalize, scale, logits, ld, counter, ids, weights);
    }
    detail::check_launch("router_topk_f32");
}

}  // namespace runtime::cuda
