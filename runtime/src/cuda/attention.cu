// Causal attention over the KV cache, flash-attention style: each block takes a tile of query rows (the
// (token, head) pairs of one KV head's group) and streams the cached positions through shared memory in
// tiles of 32, keeping a running maximum and sum per row (online softmax), so the scores never go to
// global memory. With few tokens (decode) the positions are also split over blocks, each writing an
// unnormalised partial result and its (max, sum), and a second kernel combines them: one token then
// still spreads over the whole GPU at long context.
//
// The arithmetic is f32 throughout (keys and values dequantized on load exactly as libquant does), so the
// result matches the CPU's attend() to rounding. attention_tc.cu has the tensor-core kernel for batches.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "cuda/pdl.cuh"
#include "cuda/attention_common.cuh"
#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"
#include "cuda/q8_1_block.cuh"

namespace runtime::cuda {

namespace {

using gguf::GgmlType;
using detail::AttnArgs;
using detail::warp_max;
using detail::warp_sum;

constexpr int kWarps = 8;   // per block
constexpr int kTileN = 32;  // positions per shared-memory tile: one per lane

// Positions per split at least: one tile, so that at short context (decode at a few hundred positions)
// each block loads one tile and the splits spread over as many SMs as the tiles allow (two tiles measured
// 17.5 us at 512 positions on the H200, a latency of dependent loads rather than bandwidth).
constexpr int kMinChunk = kTileN;
static_assert(kMinChunk == kAttentionSplitChunk, "plan_splits (attention_split.h) counts positions in tiles");

// Positions per split for this call: the live positions (kv_total = *pos0_dev + n_tok) spread evenly over
// the splits the grid has, in whole tiles. Computed on the device from the live length, so that a graph
// captured with a grid sized for n_ctx still uses all its splits at short context. The combine step
// computes the same value.
__device__ __forceinline__ int split_chunk(int kv_total, int n_splits) {
    const int per = n_splits == 1 ? kv_total : max((kv_total + n_splits - 1) / n_splits, kMinChunk);
    return (per + kTileN - 1) / kTileN * kTileN;
}

template <int D, int R>
constexpr size_t smem_bytes() {
    return sizeof(float) * (static_cast<size_t>(kWarps * R) * D + static_cast<size_t>(kTileN) * (D + 1) +
                            static_cast<size_t>(kTileN) * D);
}

// An output value of row (t, h), dimension c: stored, and with out_q8 quantized by its warp (the 32 lanes
// hold 32 consecutive dimensions of one row: a q8_1 block).
__device__ __forceinline__ void store_out(float* out, int64_t ldo, void* out_q8, int n_head, int t, int h, int D, int c,
                                          float v) {
    out[t * ldo + static_cast<int64_t>(h) * D + c] = v;
    if (out_q8) {
        const int64_t row_blocks = static_cast<int64_t>(n_head) * D / 32;
        quantize_block_q8_1(v, c % 32, static_cast<BlockQ8_1*>(out_q8)[t * row_blocks + (h * D + c) / 32]);
    }
}

// Block (query tile, KV head g, split). Query row r of the tile is (token, head) = (row / group,
// g * group + row % group); warp w owns rows w*R .. w*R+R-1. In the score step lane l takes position
// p0 + l for each of the warp's rows; in the value step lane l owns output dimensions l, l+32, ...
template <int D, int R, bool kF16>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(AttnArgs a) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    constexpr int M = kWarps * R;
    constexpr int KS = D + 1;  // padded key rows: lanes reading different positions hit different banks
    constexpr int DL = D / 32;
    extern __shared__ float smem[];
    float* Qs = smem;              // [M][D], pre-scaled
    float* Ks = Qs + M * D;        // [kTileN][D + 1]
    float* Vs = Ks + kTileN * KS;  // [kTileN][D]

    const int g = blockIdx.y, split = blockIdx.z;
    const int n_rows = a.n_tok * a.group;
    const int r0 = blockIdx.x * M;
    const int pos0 = *a.pos0_dev;
    const int last_row = min(r0 + M, n_rows) - 1;
    const int kv_end = pos0 + last_row / a.group + 1;  // the tile reads positions [0, kv_end)
    const int chunk = split_chunk(pos0 + a.n_tok, a.n_splits);
    const int p_begin = split * chunk;
    if (p_begin >= kv_end) return;  // past the live length: the combine step does not read this split
    const int p_end = min(p_begin + chunk, kv_end);

    // With f16 caches (kF16), each thread's share of a tile of keys and values is loaded into registers
    // (as raw half pairs) one tile ahead: the first tile's loads are in flight with the queries', the next
    // tile's while this one is multiplied. Other cache types load each tile when it is stored (holding
    // their dequantized values in registers would take ~220 registers a thread, one block per SM).
    constexpr int kPairs = kTileN * (D / 2) / (kWarps * 32);
    static_assert(kPairs * kWarps * 32 == kTileN * (D / 2), "a tile's pairs spread evenly over the block");
    __half2 kreg[kF16 ? kPairs : 1], vreg[kF16 ? kPairs : 1];
    auto load_tile = [&](int p0) {
        if constexpr (kF16) {
#pragma unroll
            for (int i = 0; i < kPairs; ++i) {
                const int idx = threadIdx.x + i * kWarps * 32;
                const int n = idx / (D / 2), d = 2 * (idx % (D / 2));
                const int p = p0 + n;
                kreg[i] = vreg[i] = __floats2half2_rn(0.f, 0.f);
                if (p < p_end) {
                    kreg[i] = *reinterpret_cast<const __half2*>(a.k + static_cast<size_t>(p) * a.k_row_bytes + g * a.k_head_bytes + 2 * d);
                    vreg[i] = *reinterpret_cast<const __half2*>(a.v + static_cast<size_t>(p) * a.v_row_bytes + g * a.v_head_bytes + 2 * d);
                }
            }
        }
    };
    load_tile(p_begin);

    for (int idx = threadIdx.x; idx < M * D; idx += blockDim.x) {
        const int row = r0 + idx / D, d = idx % D;
        float v = 0.f;
        if (row < n_rows) {
            const int t = row / a.group, h = g * a.group + row % a.group;
            v = __fmul_rn(a.q[t * a.ldq + static_cast<int64_t>(h) * D + d], a.scale);
        }
        Qs[idx] = v;
    }

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float m[R], l[R], o[R][DL];
    int limit[R];  // positions the row attends to (0 for rows past the batch)
#pragma unroll
    for (int i = 0; i < R; ++i) {
        const int row = r0 + warp * R + i;
        limit[i] = row < n_rows ? pos0 + row / a.group + 1 : 0;
        m[i] = -INFINITY;
        l[i] = 0.f;
#pragma unroll
        for (int j = 0; j < DL; ++j) o[i][j] = 0.f;
    }

    for (int p0 = p_begin; p0 < p_end; p0 += kTileN) {
        __syncthreads();  // the previous tile is consumed (and, the first time, the queries are stored)
        if constexpr (kF16) {
#pragma unroll
            for (int i = 0; i < kPairs; ++i) {
                const int idx = threadIdx.x + i * kWarps * 32;
                const int n = idx / (D / 2), d = 2 * (idx % (D / 2));
                const float2 kv = __half22float2(kreg[i]);
                Ks[n * KS + d] = kv.x;
                Ks[n * KS + d + 1] = kv.y;
                *reinterpret_cast<float2*>(Vs + n * D + d) = __half22float2(vreg[i]);
            }
        } else {
            for (int idx = threadIdx.x; idx < kTileN * (D / 2); idx += blockDim.x) {
                const int n = idx / (D / 2), d = 2 * (idx % (D / 2));
                const int p = p0 + n;
                float2 kv = make_float2(0.f, 0.f), vv = make_float2(0.f, 0.f);
                if (p < p_end) {
                    kv = detail::load_pair(a.tk, a.k + static_cast<size_t>(p) * a.k_row_bytes + g * a.k_head_bytes, d);
                    vv = detail::load_pair(a.tv, a.v + static_cast<size_t>(p) * a.v_row_bytes + g * a.v_head_bytes, d);
                }
                Ks[n * KS + d] = kv.x;
                Ks[n * KS + d + 1] = kv.y;
                *reinterpret_cast<float2*>(Vs + n * D + d) = vv;
            }
        }
        if (p0 + kTileN < p_end) load_tile(p0 + kTileN);
        __syncthreads();

        float s[R];
#pragma unroll
        for (int i = 0; i < R; ++i) s[i] = 0.f;
        const float* kr = Ks + lane * KS;
#pragma unroll 4
        for (int d = 0; d < D; d += 4) {
            const float k0 = kr[d], k1 = kr[d + 1], k2 = kr[d + 2], k3 = kr[d + 3];
#pragma unroll
            for (int i = 0; i < R; ++i) {
                const float4 qv = *reinterpret_cast<const float4*>(Qs + (warp * R + i) * D + d);
                s[i] = fmaf(qv.x, k0, s[i]);
                s[i] = fmaf(qv.y, k1, s[i]);
                s[i] = fmaf(qv.z, k2, s[i]);
                s[i] = fmaf(qv.w, k3, s[i]);
            }
        }

        const int p = p0 + lane;
        float pr[R];
#pragma unroll
        for (int i = 0; i < R; ++i) {
            const float si = (p < p_end && p < limit[i]) ? s[i] : -INFINITY;
            const float m_new = fmaxf(m[i], warp_max(si));
            // m_new is -inf only while no position of the row has been seen: nothing to add yet
            const bool none = m_new == -INFINITY;
            const float corr = none ? 1.f : expf(m[i] - m_new);
            pr[i] = none ? 0.f : expf(si - m_new);
            l[i] = l[i] * corr + warp_sum(pr[i]);
            m[i] = m_new;
#pragma unroll
            for (int j = 0; j < DL; ++j) o[i][j] *= corr;
        }

#pragma unroll 8
        for (int n = 0; n < kTileN; ++n) {
            float pn[R];
#pragma unroll
            for (int i = 0; i < R; ++i) pn[i] = __shfl_sync(0xffffffffu, pr[i], n);
#pragma unroll
            for (int j = 0; j < DL; ++j) {
                const float vv = Vs[n * D + lane + 32 * j];
#pragma unroll
                for (int i = 0; i < R; ++i) o[i][j] = fmaf(pn[i], vv, o[i][j]);
            }
        }
    }

#pragma unroll
    for (int i = 0; i < R; ++i) {
        const int row = r0 + warp * R + i;
        if (row >= n_rows) continue;
        const int t = row / a.group, h = g * a.group + row % a.group;
        if (a.part_o == nullptr) {
            const float inv = 1.f / l[i];
#pragma unroll
            for (int j = 0; j < DL; ++j) store_out(a.out, a.ldo, a.out_q8, a.n_head, t, h, D, lane + 32 * j, o[i][j] * inv);
        } else {
            const int64_t slot = (static_cast<int64_t>(split) * a.n_tok + t) * a.n_head + h;
#pragma unroll
            for (int j = 0; j < DL; ++j) a.part_o[slot * D + lane + 32 * j] = o[i][j];
            if (lane == 0) a.part_ml[slot] = make_float2(m[i], l[i]);
        }
    }
}

// One block per (token, head), one thread per output dimension: the splits that hold any of the
// token's positions, weighted by e^(their max - the overall max).
__global__ void attention_combine(const float* part_o, const float2* part_ml, int n_tok, int n_head, int D,
                                  int n_splits, const int32_t* pos0_dev, float* out, int64_t ldo, void* out_q8) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int t = blockIdx.x / n_head, h = blockIdx.x % n_head, c = threadIdx.x;
    const int chunk = split_chunk(*pos0_dev + n_tok, n_splits);
    const int n_live = (*pos0_dev + t + 1 + chunk - 1) / chunk;
    float mx = -INFINITY;
    for (int s = 0; s < n_live; ++s) mx = fmaxf(mx, part_ml[(static_cast<int64_t>(s) * n_tok + t) * n_head + h].x);
    float sum = 0.f, acc = 0.f;
    for (int s = 0; s < n_live; ++s) {
        const int64_t slot = (static_cast<int64_t>(s) * n_tok + t) * n_head + h;
        const float2 ml = part_ml[slot];
        const float w = expf(ml.x - mx);
        sum = fmaf(ml.y, w, sum);
        acc = fmaf(part_o[slot * D + c], w, acc);
    }
    store_out(out, ldo, out_q8, n_head, t, h, D, c, acc / sum);
}

bool kv_type_ok(GgmlType t) {
    return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::Q8_0 || t == GgmlType::Q4_0;
}

template <int D, int R, bool kF16>
void launch_typed(const AttnArgs& a, dim3 grid, cudaStream_t stream) {
    constexpr size_t smem = smem_bytes<D, R>();
    static std::atomic<uint64_t> done{0};
    detail::allow_smem(attention_kernel<D, R, kF16>, smem, done);
    pdl_launch(attention_kernel<D, R, kF16>, grid, kWarps * 32, smem, stream)(a);
}

template <int D, int R>
void launch(const AttnArgs& a, dim3 grid, cudaStream_t stream) {
    constexpr int kF16 = static_cast<int>(GgmlType::F16);
    if (a.tk == kF16 && a.tv == kF16) {
        launch_typed<D, R, true>(a, grid, stream);
    } else {
        launch_typed<D, R, false>(a, grid, stream);
    }
}

// R (rows per warp) trades query reuse of each key/value tile against shared memory; one row per warp
// when the whole batch fits in one tile (decode), more otherwise.
template <int D, int RBig>
void launch_rows(const AttnArgs& a, int n_rows, int n_splits, cudaStream_t stream) {
    if (n_rows <= kWarps) {
        launch<D, 1>(a, dim3(1, a.n_head / a.group, n_splits), stream);
    } else {
        const int m = kWarps * RBig;
        launch<D, RBig>(a, dim3((n_rows + m - 1) / m, a.n_head / a.group, n_splits), stream);
    }
}

}  // namespace

void attention(const float* q, int64_t ldq, const void* k_cache, GgmlType tk, size_t k_row_bytes, const void* v_cache,
               GgmlType tv, size_t v_row_bytes, int n_tok, int n_head, int n_head_kv, int head_dim_k, int head_dim_v,
               float scale, const int32_t* pos0_dev, int n_ctx, float* out, int64_t ldo, void* scratch,
               cudaStream_t stream, AttentionKernel kernel, void* out_q8) {
    if (n_tok <= 0) return;
    if (!kv_type_ok(tk) || !kv_type_ok(tv)) {
        throw Error("attention: KV cache types " + std::string(gguf::type_name(tk)) + "/" +
                    std::string(gguf::type_name(tv)) + " unsupported (f32, f16, q8_0, q4_0)");
    }
    if (n_head_kv <= 0 || n_head % n_head_kv != 0) {
        throw Error("attention: " + std::to_string(n_head) + " query heads do not group over " +
                    std::to_string(n_head_kv) + " KV heads");
    }
    const int D = head_dim_k;
    if (head_dim_k != head_dim_v || (D != 32 && D != 64 && D != 128 && D != 256)) {
        throw Error("attention: head sizes " + std::to_string(head_dim_k) + "/" + std::to_string(head_dim_v) +
                    " unsupported (equal, one of 32, 64, 128, 256)");
    }
    if (n_tok > n_ctx) throw Error("attention: batch of " + std::to_string(n_tok) + " exceeds the context");
    if (kernel == AttentionKernel::TensorCore && !detail::attention_tc_available()) {
        throw Error("attention: the tensor-core kernel needs compute capability 8.0 or later");
    }
    const bool tensor_cores =
        kernel == AttentionKernel::TensorCore ||
        (kernel == AttentionKernel::Auto && n_tok > kAttentionSplitMaxTokens && detail::attention_tc_available());
    const int n_splits = tensor_cores ? 1 : plan_splits(n_tok, n_ctx);
    AttnArgs a{};
    a.q = q;
    a.ldq = ldq;
    a.k = static_cast<const uint8_t*>(k_cache);
    a.tk = static_cast<int>(tk);
    a.k_row_bytes = k_row_bytes;
    a.k_head_bytes = gguf::row_size(tk, static_cast<uint64_t>(D));
    a.v = static_cast<const uint8_t*>(v_cache);
    a.tv = static_cast<int>(tv);
    a.v_row_bytes = v_row_bytes;
    a.v_head_bytes = gguf::row_size(tv, static_cast<uint64_t>(D));
    a.n_tok = n_tok;
    a.n_head = n_head;
    a.group = n_head / n_head_kv;
    a.scale = scale;
    a.pos0_dev = pos0_dev;
    a.n_splits = n_splits;
    a.out = out;
    a.ldo = ldo;
    a.out_q8 = out_q8;
    if (n_splits > 1) {
        if (scratch == nullptr) throw Error("attention: split attention needs scratch");
        const size_t slots = static_cast<size_t>(n_splits) * n_tok * n_head;
        a.part_o = static_cast<float*>(scratch);
        a.part_ml = reinterpret_cast<float2*>(static_cast<char*>(scratch) + slots * D * sizeof(float));
    }
    const int n_rows = n_tok * a.group;
    if (tensor_cores) {
        if (out_q8) throw Error("attention: the tensor-core kernel writes no q8_1 rows");
        detail::launch_attention_tc(a, D, n_rows, stream);
        detail::check_launch("attention (tensor cores)");
        return;
    }
    switch (D) {
        // rows per warp for batches: 16 accumulators per thread (D/32 per row) whatever the head size
        case 32: launch_rows<32, 8>(a, n_rows, n_splits, stream); break;
        case 64: launch_rows<64, 8>(a, n_rows, n_splits, stream); break;
        case 128: launch_rows<128, 4>(a, n_rows, n_splits, stream); break;
        default: launch_rows<256, 2>(a, n_rows, n_splits, stream); break;
    }
    detail::check_launch("attention");
    if (n_splits > 1) {
        pdl_launch(attention_combine, n_tok * n_head, D, 0, stream)(a.part_o, a.part_ml, n_tok, n_head, D, n_splits,
                                                            pos0_dev, out, ldo, out_q8);
        detail::check_launch("attention combine");
    }
}

}  // namespace runtime::cuda
