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

#include <cstring>

#include "cuda/attention_common.cuh"
#include "cuda/op_kernels.h"

namespace runtime::cuda::detail {

namespace {

constexpr int kTcWarps = 4;
constexpr int kTcRows = 16 * kTcWarps;  // query rows per block, 16 per warp (one m16 tile)

// Shared-memory layout in halves: Q (hi, lo) for the block's rows, K and V (hi, lo) for a tile of kN
// positions, all row-major with rows padded by 8 halves (16 bytes) so that the fragment loads of 8 rows
// fall in different banks and every row start stays 16-byte aligned (ldmatrix).
template <int D>
struct TcLayout {
    static constexpr int kN = D <= 128 ? 64 : 32;  // positions per tile (registers: kN/2 scores per thread)
    static constexpr int ld = D + 8;
    static constexpr size_t q_rows = static_cast<size_t>(kTcRows) * ld, kv_rows = static_cast<size_t>(kN) * ld;
    static constexpr size_t q_hi = 0, q_lo = q_hi + q_rows, k_hi = q_lo + q_rows, k_lo = k_hi + kv_rows,
                            v_hi = k_lo + kv_rows, v_lo = v_hi + kv_rows;
    static constexpr size_t bytes = sizeof(__half) * (v_lo + kv_rows);
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

__device__ __forceinline__ uint32_t lds32(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }

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

// Four 8x8 f16 matrices, transposed: lane l gives the address of row l % 8 of matrix l / 8 and receives,
// of matrix j, the elements (row 2t, column g) and (row 2t + 1, column g) in r[j]: from V stored
// [position][dim], exactly the B fragments of P.V.
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const __half* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
#else
    r[0] = r[1] = r[2] = r[3] = 0;
    __trap();
#endif
}

template <int D>
__global__ void __launch_bounds__(kTcWarps * 32) attention_tc_kernel(AttnArgs a) {
    using L = TcLayout<D>;
    constexpr int kN = L::kN, ld = L::ld;
    extern __shared__ __align__(128) unsigned char sm[];
    __half* base = reinterpret_cast<__half*>(sm);
    __half* Qh = base + L::q_hi;
    __half* Ql = base + L::q_lo;
    __half* Kh = base + L::k_hi;
    __half* Kl = base + L::k_lo;
    __half* Vh = base + L::v_hi;
    __half* Vl = base + L::v_lo;

    const int g = blockIdx.y;
    const int n_rows = a.n_tok * a.group;
    // the tiles of the latest tokens read the most positions: they start first
    const int r0 = static_cast<int>(gridDim.x - 1 - blockIdx.x) * kTcRows;
    const int pos0 = *a.pos0_dev;
    const int last_row = min(r0 + kTcRows, n_rows) - 1;
    const int kv_end = pos0 + last_row / a.group + 1;  // the tile reads positions [0, kv_end)
    const bool k_lo = a.tk != 1, v_lo = a.tv != 1;     // an f16 cache is exact in f16: no lo products

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
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // l: this thread's share of the row sum
    float o[D / 8][4];
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.f;

    for (int p0 = 0; p0 < kv_end; p0 += kN) {
        __syncthreads();  // the previous tile is consumed (the first time: Q is stored)
        if (!k_lo && !v_lo) {
            // f16 cache: the halves are the hi parts as stored (no lo), copied 8 at a time
            for (int idx = threadIdx.x; idx < kN * (D / 8); idx += blockDim.x) {
                const int n = idx / (D / 8), d = 8 * (idx % (D / 8));
                const int p = p0 + n;
                uint4 kq = make_uint4(0, 0, 0, 0), vq = make_uint4(0, 0, 0, 0);
                if (p < kv_end) {
                    kq = *reinterpret_cast<const uint4*>(a.k + static_cast<size_t>(p) * a.k_row_bytes + g * a.k_head_bytes +
                                                         2 * d);
                    vq = *reinterpret_cast<const uint4*>(a.v + static_cast<size_t>(p) * a.v_row_bytes + g * a.v_head_bytes +
                                                         2 * d);
                }
                *reinterpret_cast<uint4*>(Kh + n * ld + d) = kq;
                *reinterpret_cast<uint4*>(Vh + n * ld + d) = vq;
            }
        } else {
            for (int idx = threadIdx.x; idx < kN * (D / 2); idx += blockDim.x) {
                const int n = idx / (D / 2), d = 2 * (idx % (D / 2));
                const int p = p0 + n;
                float2 kv = make_float2(0.f, 0.f), vv = make_float2(0.f, 0.f);
                if (p < kv_end) {
                    kv = load_pair(a.tk, a.k + static_cast<size_t>(p) * a.k_row_bytes + g * a.k_head_bytes, d);
                    vv = load_pair(a.tv, a.v + static_cast<size_t>(p) * a.v_row_bytes + g * a.v_head_bytes, d);
                }
                uint32_t hi, lo;
                split_pair(kv.x, kv.y, hi, lo);
                *reinterpret_cast<uint32_t*>(Kh + n * ld + d) = hi;
                *reinterpret_cast<uint32_t*>(Kl + n * ld + d) = lo;
                split_pair(vv.x, vv.y, hi, lo);
                *reinterpret_cast<uint32_t*>(Vh + n * ld + d) = hi;
                *reinterpret_cast<uint32_t*>(Vl + n * ld + d) = lo;
            }
        }
        __syncthreads();

        // S = Q K^T for the warp's 16 rows and the tile's kN positions (kN / 8 tiles of 8)
        float s[kN / 8][4];
#pragma unroll
        for (int j = 0; j < kN / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            const int q_at = (wr + gq) * ld + 16 * kk + 2 * tq;
            const uint32_t ah[4] = {lds32(Qh + q_at), lds32(Qh + q_at + 8 * ld), lds32(Qh + q_at + 8),
                                    lds32(Qh + q_at + 8 * ld + 8)};
            const uint32_t al[4] = {lds32(Ql + q_at), lds32(Ql + q_at + 8 * ld), lds32(Ql + q_at + 8),
                                    lds32(Ql + q_at + 8 * ld + 8)};
#pragma unroll
            for (int j = 0; j < kN / 8; ++j) {
                const int k_at = (8 * j + gq) * ld + 16 * kk + 2 * tq;
                const uint32_t b0 = lds32(Kh + k_at), b1 = lds32(Kh + k_at + 8);
                mma_f16(s[j], ah, b0, b1);
                mma_f16(s[j], al, b0, b1);
                if (k_lo) mma_f16(s[j], ah, lds32(Kl + k_at), lds32(Kl + k_at + 8));
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
                ldsm_x4_trans(vb, Vh + v_at + 8 * dn);
                mma_f16(o[dn], ph, vb[0], vb[1]);
                mma_f16(o[dn], pl, vb[0], vb[1]);
                mma_f16(o[dn + 1], ph, vb[2], vb[3]);
                mma_f16(o[dn + 1], pl, vb[2], vb[3]);
                if (v_lo) {
                    ldsm_x4_trans(vb, Vl + v_at + 8 * dn);
                    mma_f16(o[dn], ph, vb[0], vb[1]);
                    mma_f16(o[dn + 1], ph, vb[2], vb[3]);
                }
            }
        }
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

template <int D>
void launch(const AttnArgs& a, int n_rows, cudaStream_t stream) {
    static std::atomic<uint64_t> done{0};
    allow_smem(attention_tc_kernel<D>, TcLayout<D>::bytes, done);
    const dim3 grid((n_rows + kTcRows - 1) / kTcRows, a.n_head / a.group, 1);
    attention_tc_kernel<D><<<grid, kTcWarps * 32, TcLayout<D>::bytes, stream>>>(a);
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
