// Causal attention for batches on the tensor cores (WMMA, f16 inputs, f32 accumulation): the same
// algorithm as attention.cu's f32 kernel (tiles of query rows of one KV head's group, positions streamed
// through shared memory, online softmax), with Q.K^T and P.V as 16x16x16 matrix products. Queries (scaled),
// keys, values and the probabilities are rounded to f16; scores, the running maximum and sum and the
// output accumulate in f32. The output accumulator lives in shared memory, where rows can be rescaled
// when their maximum moves (the fragment layout of WMMA accumulators is not specified).
#include <mma.h>

#include "cuda/attention_common.cuh"
#include "cuda/op_kernels.h"

namespace runtime::cuda::detail {

namespace {

using namespace nvcuda;

constexpr int kTcWarps = 4;
constexpr int kTcRows = 16 * kTcWarps;  // query rows per block, 16 per warp
constexpr int kTcN = 32;                // positions per tile

constexpr size_t align128(size_t x) { return (x + 127) / 128 * 128; }

// Shared-memory layout; rows padded (by 16 bytes) so that fragment loads spread over the banks.
template <int D>
struct TcLayout {
    static constexpr int ldh = D + 8;      // halves per row of Q, K, V
    static constexpr int ldp = kTcN + 8;   // halves per row of P
    static constexpr int lds = kTcN + 4;   // floats per row of S
    static constexpr int ldo = D + 4;      // floats per row of O
    static constexpr size_t q = 0;
    static constexpr size_t k = align128(q + sizeof(__half) * kTcRows * ldh);
    static constexpr size_t v = align128(k + sizeof(__half) * kTcN * ldh);
    static constexpr size_t s = align128(v + sizeof(__half) * kTcN * ldh);
    static constexpr size_t p = align128(s + sizeof(float) * kTcRows * lds);
    static constexpr size_t o = align128(p + sizeof(__half) * kTcRows * ldp);
    static constexpr size_t stats = align128(o + sizeof(float) * kTcRows * ldo);
    static constexpr size_t bytes = stats + 3 * sizeof(float) * kTcRows;  // max, sum, correction per row
};

template <int D>
__global__ void __launch_bounds__(kTcWarps * 32) attention_tc_kernel(AttnArgs a) {
    using L = TcLayout<D>;
    extern __shared__ __align__(128) unsigned char sm[];
    __half* Qs = reinterpret_cast<__half*>(sm + L::q);
    __half* Ks = reinterpret_cast<__half*>(sm + L::k);
    __half* Vs = reinterpret_cast<__half*>(sm + L::v);
    float* Ss = reinterpret_cast<float*>(sm + L::s);
    __half* Ps = reinterpret_cast<__half*>(sm + L::p);
    float* Os = reinterpret_cast<float*>(sm + L::o);
    float* m_s = reinterpret_cast<float*>(sm + L::stats);
    float* l_s = m_s + kTcRows;
    float* c_s = l_s + kTcRows;

    const int g = blockIdx.y;
    const int n_rows = a.n_tok * a.group;
    const int r0 = blockIdx.x * kTcRows;
    const int pos0 = *a.pos0_dev;
    const int last_row = min(r0 + kTcRows, n_rows) - 1;
    const int kv_end = pos0 + last_row / a.group + 1;  // the tile reads positions [0, kv_end)

    for (int idx = threadIdx.x; idx < kTcRows * D; idx += blockDim.x) {
        const int r = idx / D, d = idx % D, row = r0 + r;
        float v = 0.f;
        if (row < n_rows) {
            const int t = row / a.group, h = g * a.group + row % a.group;
            v = __fmul_rn(a.q[t * a.ldq + static_cast<int64_t>(h) * D + d], a.scale);
        }
        Qs[r * L::ldh + d] = __float2half_rn(v);
        Os[r * L::ldo + d] = 0.f;
    }
    for (int r = threadIdx.x; r < kTcRows; r += blockDim.x) {
        m_s[r] = -INFINITY;
        l_s[r] = 0.f;
    }

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wr = warp * 16;  // the warp's first row in the tile
    for (int p0 = 0; p0 < kv_end; p0 += kTcN) {
        __syncthreads();  // the previous tile is consumed (the first time: Q, O and the statistics are set)
        for (int idx = threadIdx.x; idx < kTcN * (D / 2); idx += blockDim.x) {
            const int n = idx / (D / 2), d = 2 * (idx % (D / 2));
            const int p = p0 + n;
            float2 kv = make_float2(0.f, 0.f), vv = make_float2(0.f, 0.f);
            if (p < kv_end) {
                kv = load_pair(a.tk, a.k + static_cast<size_t>(p) * a.k_row_bytes + g * a.k_head_bytes, d);
                vv = load_pair(a.tv, a.v + static_cast<size_t>(p) * a.v_row_bytes + g * a.v_head_bytes, d);
            }
            *reinterpret_cast<__half2*>(Ks + n * L::ldh + d) = __floats2half2_rn(kv.x, kv.y);
            *reinterpret_cast<__half2*>(Vs + n * L::ldh + d) = __floats2half2_rn(vv.x, vv.y);
        }
        __syncthreads();

        // S = Q K^T for the warp's 16 rows: K rows read as the columns of a column-major B
#pragma unroll
        for (int nb = 0; nb < kTcN / 16; ++nb) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.f);
#pragma unroll
            for (int kb = 0; kb < D / 16; ++kb) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, Qs + wr * L::ldh + kb * 16, L::ldh);
                wmma::load_matrix_sync(fb, Ks + nb * 16 * L::ldh + kb * 16, L::ldh);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Ss + wr * L::lds + nb * 16, acc, L::lds, wmma::mem_row_major);
        }
        __syncwarp();

        // online softmax: lanes 2r and 2r+1 share row r, each taking every other position (2c + lane % 2:
        // fewer bank conflicts than halves). P is rounded to f16 and the sum taken of the rounded values,
        // so that numerator and denominator agree.
        {
            const int r = lane / 2, h = lane % 2, row = r0 + wr + r;
            const int limit = row < n_rows ? pos0 + row / a.group + 1 : 0;
            float sv[kTcN / 2];
            float mx = -INFINITY;
#pragma unroll
            for (int c = 0; c < kTcN / 2; ++c) {
                const int p = p0 + 2 * c + h;
                sv[c] = (p < kv_end && p < limit) ? Ss[(wr + r) * L::lds + 2 * c + h] : -INFINITY;
                mx = fmaxf(mx, sv[c]);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            const float m_old = m_s[wr + r];
            const float m_new = fmaxf(m_old, mx);
            const bool none = m_new == -INFINITY;  // no position of the row seen yet
            const float corr = none ? 1.f : expf(m_old - m_new);
            float sum = 0.f;
#pragma unroll
            for (int c = 0; c < kTcN / 2; ++c) {
                const __half ph = __float2half_rn(none ? 0.f : expf(sv[c] - m_new));
                Ps[(wr + r) * L::ldp + 2 * c + h] = ph;
                sum += __half2float(ph);
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            __syncwarp();  // both lanes of the pair have read the row's statistics
            if (h == 0) {
                m_s[wr + r] = m_new;
                l_s[wr + r] = l_s[wr + r] * corr + sum;
                c_s[wr + r] = corr;
            }
        }
        __syncwarp();

        // rescale the output rows whose maximum moved (after the first tiles, usually none)
        if (!__all_sync(0xffffffffu, c_s[wr + lane % 16] == 1.f)) {
            for (int idx = lane; idx < 16 * D; idx += 32) {
                const int r = idx / D, d = idx % D;
                Os[(wr + r) * L::ldo + d] *= c_s[wr + r];
            }
            __syncwarp();
        }

        // O += P V
#pragma unroll
        for (int db = 0; db < D / 16; ++db) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, Os + wr * L::ldo + db * 16, L::ldo, wmma::mem_row_major);
#pragma unroll
            for (int kb = 0; kb < kTcN / 16; ++kb) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, Ps + wr * L::ldp + kb * 16, L::ldp);
                wmma::load_matrix_sync(fb, Vs + kb * 16 * L::ldh + db * 16, L::ldh);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Os + wr * L::ldo + db * 16, acc, L::ldo, wmma::mem_row_major);
        }
    }
    __syncwarp();

    for (int idx = lane; idx < 16 * D; idx += 32) {
        const int r = idx / D, d = idx % D, row = r0 + wr + r;
        if (row >= n_rows) continue;
        const int t = row / a.group, h = g * a.group + row % a.group;
        a.out[t * a.ldo + static_cast<int64_t>(h) * D + d] = Os[(wr + r) * L::ldo + d] / l_s[wr + r];
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

void launch_attention_tc(const AttnArgs& a, int head_dim, int n_rows, cudaStream_t stream) {
    switch (head_dim) {
        case 32: launch<32>(a, n_rows, stream); break;
        case 64: launch<64>(a, n_rows, stream); break;
        case 128: launch<128>(a, n_rows, stream); break;
        default: launch<256>(a, n_rows, stream); break;
    }
}

}  // namespace runtime::cuda::detail
