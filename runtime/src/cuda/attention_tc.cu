// Causal attention for batches on the tensor cores (mma.sync m16n8k16, f16 inputs, f32 accumulation,
// sm_80 and later), flash-attention style: the same algorithm as attention.cu's f32 kernel (tiles of 64
// query rows of one KV head's group, positions streamed through shared memory, online softmax), with the
// scores and the output accumulators in registers (the mma fragments) instead of shared memory.
//
// Accuracy: every f32 operand x is split into two f16 values, hi = f16(x) and lo = f16(x - hi), so that
// hi + lo carries 22 bits of x, and the products are summed from the pairs that matter:
//   S = Qhi.Khi + Qlo.Khi + Qhi.Klo      O += Phi.Vhi + Plo.Vhi + Phi.Vlo
// (the lo.lo term is 2^-22 relative). A K or V half of an f16 cache is exact in f16, so its lo products
// are skipped. Scores, softmax and output stay f32; the result follows the f32 kernel to ~1e-6 rather
// than the ~1e-3 of f16 products (the plain f16 form moved perplexity by 0.2%). Operands must be below
// 65504 in magnitude (f16's range): queries times the scale, keys, values.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/attention_common.cuh"
#include "cuda/attention_tc_tiles.h"
#include "cuda/op_kernels.h"

namespace runtime::cuda::detail {

namespace {

constexpr int kTcWarps = 4;
constexpr int kTcRows = kAttentionTcRows;  // query rows per block, 16 per warp (one m16 tile)
static_assert(kTcRows == 16 * kTcWarps);

// Shared-memory layout in halves: Q (hi, lo) for the block's rows, then kStages buffers of a tile of kN
// positions, each K and V (hi, and lo unless the cache is f16, whose halves are exact), all row-major with
// rows padded by 8 halves (16 bytes) so that the fragment loads of 8 rows fall in different banks and every
// row start stays 16-byte aligned (ldmatrix, cp.async). An f16 cache streams its tiles with cp.async: the
// next tile loads while the block works on this one. attention_tc_tiles (attention_tc_tiles.h) picks kN.
template <int D, bool F16, int N>
struct TcLayout {
    static constexpr int kN = N;  // positions per tile
    static_assert(kN % 16 == 0, "a tile is whole k16 steps of P.V");
    static constexpr int kStages = attention_tc_stages(F16);
    static constexpr int ld = D + 8;
    static constexpr size_t q_rows = static_cast<size_t>(kTcRows) * ld, kv_rows = static_cast<size_t>(kN) * ld;
    static constexpr size_t q_hi = 0, q_lo = q_hi + q_rows, tiles = q_lo + q_rows;
    static constexpr size_t tile = (F16 ? 2 : 4) * kv_rows;  // one stage: K hi, V hi [, K lo, V lo]
    static constexpr size_t k_hi = 0, v_hi = kv_rows, k_lo = 2 * kv_rows, v_lo = 3 * kv_rows;  // in a stage
    static constexpr size_t bytes = sizeof(__half) * (tiles + kStages * tile);
    static_assert(bytes == attention_tc_shared_bytes(D, N, kStages, F16));
};

__device__ __forceinline__ uint32_t half2_bits(__half2 h) {
    uint32_t u;
    memcpy(&u, &h, sizeof(u));
    return u;
}

// (x, y) -> hi = f16 pair, lo = f16 pair of the remainders; the lower element in the lower 16 bits.
__device__ __forceinline__ void split_pair(float x, float y, uint32_t& hi, uint32_t& lo) {
    const __half2 h = __floats2half2_rn(x, y);
    const float2 hf = __half22float2(h);
    hi = half2_bits(h);
    lo = half2_bits(__floats2half2_rn(x - hf.x, y - hf.y));
}

// D (16 x 8, f32) += A (16 x 16, row-major f16) * B (16 x 8, column-major f16). Fragments (g = lane / 4,
// t = lane % 4): a[0] row g, k = 2t, 2t+1; a[1] row g+8, same k; a[2], a[3] the same rows at k + 8; b0 column
// g, k = 2t, 2t+1; b1 the same at k + 8; c[0], c[1] row g, columns 2t, 2t+1; c[2], c[3] row g+8.
__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap();  // never launched below sm_80 (the host checks the compute capability)
#endif
}

// 16 bytes global -> shared without passing through registers; zeros when !valid (nothing is read then)
__device__ __forceinline__ void cp_async16(__half* dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
#else
    __trap();
#endif
}

// closes this thread's cp.async copies issued since the last commit into one group
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// waits until at most `pending` of this thread's newest committed groups are in flight (all older ones done)
template <int pending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
#endif
}

// Four 8x8 f16 matrices from shared memory: lane l gives the address of row l % 8 of matrix l / 8 and
// receives, of matrix j, in r[j]:
// - plain: the elements (row g, columns 2t and 2t + 1): the A fragment of a row-major 16x16 tile (matrices:
//   rows 0-7 / 8-15 x columns 0-7, then 8-15), or the B fragments of two 8-column tiles of a matrix stored
//   [column][k] (K as [position][dim]);
// - Trans: the elements (rows 2t and 2t + 1, column g): from V stored [position][dim], exactly the B
//   fragments of P.V.
template <bool Trans>
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const __half* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
    if constexpr (Trans) {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr)
                     : "memory");
    } else {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr)
                     : "memory");
    }
#else
    r[0] = r[1] = r[2] = r[3] = 0;
    __trap();
#endif
}

// F16: both caches are f16 (their halves are the hi parts as stored, with no lo products); otherwise each
// position's K and V are converted and split as they come into shared memory.
template <int D, bool F16, int N>
__global__ void __launch_bounds__(kTcWarps * 32) attention_tc_kernel(AttnArgs a) {
    using L = TcLayout<D, F16, N>;
    constexpr int kN = L::kN, ld = L::ld;
    extern __shared__ __align__(128) unsigned char sm[];
    __half* base = reinterpret_cast<__half*>(sm);
    __half* Qh = base + L::q_hi;
    __half* Ql = base + L::q_lo;

    const int g = blockIdx.y;
    const int n_rows = a.n_tok * a.group;
    // the tiles of the latest tokens read the most positions: they start first
    const int r0 = static_cast<int>(gridDim.x - 1 - blockIdx.x) * kTcRows;
    const int pos0 = *a.pos0_dev;
    const int last_row = min(r0 + kTcRows, n_rows) - 1;
    const int kv_end = pos0 + last_row / a.group + 1;  // the tile reads positions [0, kv_end)
    const bool k_lo = !F16 && a.tk != 1, v_lo = !F16 && a.tv != 1;  // an f16 half is exact: no lo products
    const unsigned char* k_src = a.k + static_cast<size_t>(g) * a.k_head_bytes;
    const unsigned char* v_src = a.v + static_cast<size_t>(g) * a.v_head_bytes;

    // positions [p0, p0 + kN) into stage `stage`, zeros past kv_end
    auto load_tile = [&](int p0, int stage) {
        __half* t = base + L::tiles + stage * L::tile;
        if constexpr (F16) {
            for (int idx = threadIdx.x; idx < kN * (D / 8); idx += blockDim.x) {
                const int n = idx / (D / 8), d = 8 * (idx % (D / 8)), p = p0 + n;
                const bool valid = p < kv_end;
                const size_t at = static_cast<size_t>(valid ? p : 0);
                cp_async16(t + L::k_hi + n * ld + d, k_src + at * a.k_row_bytes + 2 * d, valid);
                cp_async16(t + L::v_hi + n * ld + d, v_src + at * a.v_row_bytes + 2 * d, valid);
            }
        } else {
            for (int idx = threadIdx.x; idx < kN * (D / 2); idx += blockDim.x) {
                const int n = idx / (D / 2), d = 2 * (idx % (D / 2)), p = p0 + n;
                float2 kv = make_float2(0.f, 0.f), vv = make_float2(0.f, 0.f);
                if (p < kv_end) {
                    kv = load_pair(a.tk, k_src + static_cast<size_t>(p) * a.k_row_bytes, d);
                    vv = load_pair(a.tv, v_src + static_cast<size_t>(p) * a.v_row_bytes, d);
                }
                uint32_t hi, lo;
                split_pair(kv.x, kv.y, hi, lo);
                *reinterpret_cast<uint32_t*>(t + L::k_hi + n * ld + d) = hi;
                *reinterpret_cast<uint32_t*>(t + L::k_lo + n * ld + d) = lo;
                split_pair(vv.x, vv.y, hi, lo);
                *reinterpret_cast<uint32_t*>(t + L::v_hi + n * ld + d) = hi;
                *reinterpret_cast<uint32_t*>(t + L::v_lo + n * ld + d) = lo;
            }
        }
    };
    if constexpr (F16) {
        load_tile(0, 0);  // in flight while Q is converted
        cp_async_commit();
    }

    for (int idx = threadIdx.x; idx < kTcRows * (D / 2); idx += blockDim.x) {
        const int r = idx / (D / 2), d = 2 * (idx % (D / 2)), row = r0 + r;
        float x = 0.f, y = 0.f;
        if (row < n_rows) {
            const int t = row / a.group, h = g * a.group + row % a.group;
            const float* qp = a.q + t * a.ldq + static_cast<int64_t>(h) * D + d;
            x = __fmul_rn(qp[0], a.scale);
            y = __fmul_rn(qp[1], a.scale);
        }
        uint32_t hi, lo;
        split_pair(x, y, hi, lo);
        *reinterpret_cast<uint32_t*>(Qh + r * ld + d) = hi;
        *reinterpret_cast<uint32_t*>(Ql + r * ld + d) = lo;
    }

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, tq = lane % 4;
    const int wr = warp * 16;  // the warp's first row in the tile
    int limit[2];              // positions rows gq and gq + 8 of the warp attend to (0 past the batch)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int row = r0 + wr + gq + 8 * i;
        limit[i] = row < n_rows ? pos0 + row / a.group + 1 : 0;
    }
    // ldmatrix addresses of this lane: Q rows wr + 0-7 / 8-15, dims +0 / +8 (an A fragment); K positions
    // +0-7 / +8-15 (two 8-position tiles), dims +0 / +8
    const int q_at = (wr + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 8;
    const int k_at = ((lane & 7) + (lane >> 4) * 8) * ld + ((lane >> 3) & 1) * 8;
    // the warp's Q fragments (hi, lo) stay in registers where they fit (64 a thread at D = 128)
    constexpr bool kQInRegisters = D <= 128;
    uint32_t qf[kQInRegisters ? D / 16 : 1][2][4];
    if constexpr (kQInRegisters) {
        __syncthreads();  // Q is stored
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            ldsm_x4<false>(qf[kk][0], Qh + q_at + 16 * kk);
            ldsm_x4<false>(qf[kk][1], Ql + q_at + 16 * kk);
        }
    }
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // l: this thread's share of the row sum
    float o[D / 8][4];
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.f;

    for (int p0 = 0, stage = 0; p0 < kv_end; p0 += kN) {
        if constexpr (F16) {
            // the next tile goes into the other stage, free since the barrier that ended the last step;
            // this one's copies (committed a step earlier: all but the newest group) are then complete
            if (p0 + kN < kv_end) load_tile(p0 + kN, stage ^ 1);
            cp_async_commit();  // (empty after the last tile)
            cp_async_wait<1>();
        } else {
            load_tile(p0, 0);
        }
        __syncthreads();  // the tile (and the first time, Q) is in shared memory for every warp
        const __half* Kh = base + L::tiles + stage * L::tile + L::k_hi;
        const __half* Kl = base + L::tiles + stage * L::tile + L::k_lo;
        const __half* Vh = base + L::tiles + stage * L::tile + L::v_hi;
        const __half* Vl = base + L::tiles + stage * L::tile + L::v_lo;

        // S = Q K^T for the warp's 16 rows and the tile's kN positions (kN / 8 tiles of 8, two per ldmatrix)
        float s[kN / 8][4];
#pragma unroll
        for (int j = 0; j < kN / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t ah[4], al[4];
            if constexpr (kQInRegisters) {
#pragma unroll
                for (int e = 0; e < 4; ++e) ah[e] = qf[kk][0][e], al[e] = qf[kk][1][e];
            } else {
                ldsm_x4<false>(ah, Qh + q_at + 16 * kk);
                ldsm_x4<false>(al, Ql + q_at + 16 * kk);
            }
#pragma unroll
            for (int j = 0; j < kN / 8; j += 2) {
                uint32_t kb[4];
                ldsm_x4<false>(kb, Kh + k_at + 8 * j * ld + 16 * kk);
                mma_f16(s[j], ah, kb[0], kb[1]);
                mma_f16(s[j], al, kb[0], kb[1]);
                mma_f16(s[j + 1], ah, kb[2], kb[3]);
                mma_f16(s[j + 1], al, kb[2], kb[3]);
                if (k_lo) {
                    ldsm_x4<false>(kb, Kl + k_at + 8 * j * ld + 16 * kk);
                    mma_f16(s[j], ah, kb[0], kb[1]);
                    mma_f16(s[j + 1], ah, kb[2], kb[3]);
                }
            }
        }

        // online softmax for rows gq (i = 0) and gq + 8 (i = 1); the 4 lanes of a row hold 2 positions of
        // each 8-position tile
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int p = p0 + 8 * j + 2 * tq + e;  // p < limit implies p < kv_end
                    if (p >= limit[i]) s[j][2 * i + e] = -INFINITY;
                    mx = fmaxf(mx, s[j][2 * i + e]);
                }
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m[i], mx);
            const bool none = m_new == -INFINITY;  // no position of the row seen yet
            const float corr = none ? 1.f : expf(m[i] - m_new);
            float sum = 0.f;
#pragma unroll
            for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float pr = none ? 0.f : expf(s[j][2 * i + e] - m_new);
                    s[j][2 * i + e] = pr;
                    sum += pr;
                }
            }
            l[i] = l[i] * corr + sum;
            m[i] = m_new;
#pragma unroll
            for (int dn = 0; dn < D / 8; ++dn) {
                o[dn][2 * i] *= corr;
                o[dn][2 * i + 1] *= corr;
            }
        }

        // O += P V: the score fragments of two 8-position tiles are the A fragment of one k16 step
#pragma unroll
        for (int kk = 0; kk < kN / 16; ++kk) {
            uint32_t ph[4], pl[4];
            split_pair(s[2 * kk][0], s[2 * kk][1], ph[0], pl[0]);
            split_pair(s[2 * kk][2], s[2 * kk][3], ph[1], pl[1]);
            split_pair(s[2 * kk + 1][0], s[2 * kk + 1][1], ph[2], pl[2]);
            split_pair(s[2 * kk + 1][2], s[2 * kk + 1][3], ph[3], pl[3]);
            // lane l addresses row l % 8 of matrix l / 8: positions +8 for matrices 1 and 3, dims +8 for 2 and 3
            const int v_at = (16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 8;
#pragma unroll
            for (int dn = 0; dn < D / 8; dn += 2) {
                uint32_t vb[4];
                ldsm_x4<true>(vb, Vh + v_at + 8 * dn);
                mma_f16(o[dn], ph, vb[0], vb[1]);
                mma_f16(o[dn], pl, vb[0], vb[1]);
                mma_f16(o[dn + 1], ph, vb[2], vb[3]);
                mma_f16(o[dn + 1], pl, vb[2], vb[3]);
                if (v_lo) {
                    ldsm_x4<true>(vb, Vl + v_at + 8 * dn);
                    mma_f16(o[dn], ph, vb[0], vb[1]);
                    mma_f16(o[dn + 1], ph, vb[2], vb[3]);
                }
            }
        }
        __syncthreads();  // every warp is done with this stage before it is loaded again
        stage ^= L::kStages - 1;
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int row = r0 + wr + gq + 8 * i;
        if (row >= n_rows) continue;
        const int t = row / a.group, h = g * a.group + row % a.group;
        float* out = a.out + t * a.ldo + static_cast<int64_t>(h) * D + 2 * tq;
        const float inv = 1.f / l[i];
#pragma unroll
        for (int dn = 0; dn < D / 8; ++dn) {
            out[8 * dn] = o[dn][2 * i] * inv;
            out[8 * dn + 1] = o[dn][2 * i + 1] * inv;
        }
    }
}

template <int D, bool F16, int N>
void launch_tiles(const AttnArgs& a, int n_rows, cudaStream_t stream) {
    using L = TcLayout<D, F16, N>;
    static std::atomic<uint64_t> done{0};
    allow_smem(attention_tc_kernel<D, F16, N>, L::bytes, done);
    const dim3 grid((n_rows + kTcRows - 1) / kTcRows, a.n_head / a.group, 1);
    attention_tc_kernel<D, F16, N><<<grid, kTcWarps * 32, L::bytes, stream>>>(a);
}

// The device's shared memory per block, or GGUF_CUDA_SMEM_LIMIT's bytes where smaller (to run the tiles of a
// 99 KiB part on a larger one).
size_t shared_limit() {
    int device = 0, optin = 0;
    check(cudaGetDevice(&device), "attention: cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "attention: cudaDeviceGetAttribute");
    static const size_t cap = shared_limit_cap(std::getenv("GGUF_CUDA_SMEM_LIMIT"));
    return std::min(static_cast<size_t>(optin), cap);
}

template <int D, bool F16>
void launch_typed(const AttnArgs& a, int n_rows, cudaStream_t stream) {
    constexpr int full = attention_tc_full_tile(D);
    const size_t limit = shared_limit();
    const AttentionTcTiles tiles = attention_tc_tiles(D, F16, limit);
    if (tiles.positions == full) {
        launch_tiles<D, F16, full>(a, n_rows, stream);
    } else if (tiles.positions == full / 2) {
        launch_tiles<D, F16, full / 2>(a, n_rows, stream);
    } else {
        throw Error("attention: the tensor-core kernel for head size " + std::to_string(D) + " needs " +
                    std::to_string(attention_tc_shared_bytes(D, full / 2, attention_tc_stages(F16), F16)) +
                    " bytes of shared memory a block; this device allows " + std::to_string(limit));
    }
}

template <int D>
void launch(const AttnArgs& a, int n_rows, cudaStream_t stream) {
    if (a.tk == 1 && a.tv == 1) {
        launch_typed<D, true>(a, n_rows, stream);
    } else {
        launch_typed<D, false>(a, n_rows, stream);
    }
}

}  // namespace

bool attention_tc_available() {
    int device = 0, major = 0;
    check(cudaGetDevice(&device), "attention: cudaGetDevice");
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "attention: cudaDeviceGetAttribute");
    return major >= 8;
}

void launch_attention_tc(const AttnArgs& a, int head_dim, int n_rows, cudaStream_t stream) {
    switch (head_dim) {
        case 32: launch<32>(a, n_rows, stream); break;
        case 64: launch<64>(a, n_rows, stream); break;
        case 128: launch<128>(a, n_rows, stream); break;
        default: launch<256>(a, n_rows, stream); break;
    }
}

}  // namespace runtime::cuda::detail
