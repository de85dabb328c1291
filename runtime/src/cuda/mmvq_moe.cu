// The MoE decode step in two launches: gate and up of every routed slot with SwiGLU applied (and the
// result quantized to q8_1 for the down projection), then the down projection with each token's
// routing-weighted sum. They replace gate, up, swiglu, quantize, down, memset and weighted-sum launches.
//
// Rows are owned as in mmvq.cu: a segment of `lanes` threads per weight row, consecutive threads on
// consecutive units, so a warp reads a contiguous span of the row.
#include <algorithm>

#include "cuda/pdl.cuh"
#include "cuda/q8_1_block.cuh"
#include "cuda/quant_units.cuh"
#include "cuda/stage_rows.cuh"
#include "cuda/swiglu_one.cuh"

namespace runtime::cuda {

namespace {

constexpr int kHalf = 128;  // threads of the gate half (and of the up half) of a glu block
constexpr int kSumWarps = 8;  // most warps of a sum block (one slot each at a time)
constexpr int kMaxK = 64;  // slots per token the sum kernel's shared partials hold

// Block (row tile, slot): threads [0, 128) dot the tile's gate rows, [128, 256) its up rows, both with
// the slot's activation row; then silu(g) * u per row. With hq, the last block of a slot to finish
// (counted in counters[slot], which it resets) quantizes the slot's finished row of h to q8_1.
template <class U>
__global__ void __launch_bounds__(2 * kHalf) glu_ids_kernel(const uint8_t* Wg, const uint8_t* Wu, size_t row_bytes,
                                                           size_t stride_g, size_t stride_u, int n_units, int64_t n_ff,
                                                           const BlockQ8_1* x, int64_t x_row_blocks, int x_group,
                                                           const int32_t* ids, float* h, int64_t ldh, BlockQ8_1* hq,
                                                           int32_t* counters, int lanes, int grain) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    extern __shared__ uint4 staged[];  // with grain > 0: the tile's gate rows, then its up rows
    __shared__ float part[2][kHalf];
    __shared__ bool last;
    const int slot = blockIdx.y;
    const int half = threadIdx.x / kHalf, tid = threadIdx.x % kHalf;
    const int seg = tid / lanes, lane = tid % lanes;
    const int rows = kHalf / lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * rows + seg;
    const int32_t e = ids[slot];
    const BlockQ8_1* xs[1] = {x + static_cast<int64_t>(slot / x_group) * x_row_blocks};
    float acc[1] = {0.f};
    const int64_t ee = e < 0 ? 0 : e;  // a negative id reads nothing
    const uint8_t* mat = half == 0 ? Wg + ee * stride_g : Wu + ee * stride_u;
    const uint8_t* row = mat + r * row_bytes;
    if (grain && e >= 0) {  // e is the same for the whole block
        const int64_t r0 = static_cast<int64_t>(blockIdx.x) * rows;
        const size_t bytes = static_cast<size_t>(min(static_cast<int64_t>(rows), n_ff - r0)) * row_bytes;
        uint8_t* mine = reinterpret_cast<uint8_t*>(staged) + half * rows * row_bytes;
        stage_copy(mat + r0 * row_bytes, bytes, mine, tid, kHalf, grain);
        __syncthreads();
        row = mine + seg * row_bytes;
    }
    if (r < n_ff && e >= 0) units::row_dot<U, 1>(row, n_units, lane, lanes, xs, 1, acc);
    const float v = units::segment_sum(acc[0], lanes);
    if (lane == 0) part[half][seg] = v;
    __syncthreads();
    if (threadIdx.x < rows) {
        const int64_t rr = static_cast<int64_t>(blockIdx.x) * rows + threadIdx.x;
        if (rr < n_ff) h[slot * ldh + rr] = swiglu_one(part[0][threadIdx.x], part[1][threadIdx.x]);
    }
    if (!hq) return;
    // make this block's rows visible to the slot's last block before counting it
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&counters[slot], 1) == static_cast<int>(gridDim.x) - 1;
    __syncthreads();
    if (!last) return;
    const int warp = threadIdx.x / 32, wl = threadIdx.x % 32;
    const int64_t nb = n_ff / 32;
    BlockQ8_1* out = hq + slot * nb;
    for (int64_t b = warp; b < nb; b += 2 * kHalf / 32) {
        // L2, not L1: the other blocks' rows were written from other SMs
        quantize_block_q8_1(__ldcg(h + slot * ldh + b * 32 + wl), wl, out[b]);
    }
    if (threadIdx.x == 0) counters[slot] = 0;  // ready for the next launch (graph replays included)
}

// Block (row tile, token): warp w dots the tile's rows of slots j = w, w + warps, ... of the token;
// then y = sum_j weights_j * dot_j in ascending j, each product and sum rounded (moe_weighted_sum).
template <class U>
__global__ void __launch_bounds__(32 * kSumWarps) sum_ids_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride,
                                                                 int n_units, int64_t n_out, const BlockQ8_1* x,
                                                                 int64_t x_row_blocks, const int32_t* ids,
                                                                 const float* weights, int k, float* y, int64_t ldy,
                                                                 int lanes, int grain) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    extern __shared__ uint4 staged[];  // with grain > 0: per warp, the tile's rows of its slot's expert
    __shared__ float part[kMaxK][32];
    const int t = blockIdx.y;
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    const int seg = (threadIdx.x % 32) / lanes, lane = threadIdx.x % lanes;
    const int rows = 32 / lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * rows + seg;
    for (int j = warp; j < k; j += warps) {
        const int64_t slot = static_cast<int64_t>(t) * k + j;
        const int32_t e = ids[slot];
        const BlockQ8_1* xs[1] = {x + slot * x_row_blocks};
        float acc[1] = {0.f};
        const uint8_t* row = W + (e < 0 ? 0 : e) * mat_stride + r * row_bytes;
        if (grain && e >= 0) {  // e is the same for the whole warp
            const int64_t r0 = static_cast<int64_t>(blockIdx.x) * rows;
            const size_t bytes = static_cast<size_t>(min(static_cast<int64_t>(rows), n_out - r0)) * row_bytes;
            uint8_t* mine = reinterpret_cast<uint8_t*>(staged) + warp * rows * row_bytes;
            __syncwarp();  // the previous slot's rows are consumed
            stage_copy(W + e * mat_stride + r0 * row_bytes, bytes, mine, threadIdx.x % 32, 32, grain);
            __syncwarp();
            row = mine + seg * row_bytes;
        }
        if (r < n_out && e >= 0) units::row_dot<U, 1>(row, n_units, lane, lanes, xs, 1, acc);
        const float v = units::segment_sum(acc[0], lanes);
        if (lane == 0) part[j][seg] = v;
    }
    __syncthreads();
    if (threadIdx.x < rows) {
        const int64_t rr = static_cast<int64_t>(blockIdx.x) * rows + threadIdx.x;
        if (rr < n_out) {
            float s = 0.f;
            for (int j = 0; j < k; ++j) s = __fadd_rn(s, __fmul_rn(weights[t * k + j], part[j][threadIdx.x]));
            y[t * ldy + rr] = s;
        }
    }
}

void check_type(GgmlType type, int64_t n_in, const char* what) {
    if (!mmvq_supported(type)) throw Error(std::string(what) + ": type " + std::to_string(static_cast<int>(type)) + " has no int8 kernel");
    const int64_t block = (type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::Q4_K ||
                           type == GgmlType::Q5_K || type == GgmlType::Q6_K || type == GgmlType::IQ4_XS) ? 256 : 32;
    if (n_in <= 0 || n_in % block != 0) throw Error(std::string(what) + ": n_in " + std::to_string(n_in) + " is not a multiple of " + std::to_string(block));
}

}  // namespace

void mmvq_ids_glu(GgmlType type, const void* Wg, size_t stride_g, const void* Wu, size_t stride_u, size_t row_bytes,
                  int64_t n_in, int64_t n_ff, const void* xq, int x_group, const int32_t* ids, int n_slots, float* h,
                  int64_t ldh, void* hq, int32_t* counters, cudaStream_t stream) {
    check_type(type, n_in, "mmvq_ids_glu");
    if (x_group < 1) throw Error("mmvq_ids_glu: x_group must be at least 1");
    if (n_slots > 65535) throw Error("mmvq_ids_glu: more than 65535 slots");
    if (hq && (n_ff % 32 != 0 || !counters)) throw Error("mmvq_ids_glu: quantizing h needs n_ff a multiple of 32 and counters");
    if (ldh < n_ff) throw Error("mmvq_ids_glu: ldh is smaller than n_ff");
    if (n_ff <= 0 || n_slots <= 0) return;
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        const int n_units = static_cast<int>(n_in / U::kElems);
        const int lanes = units::lanes_for(n_units);
        const int rows = kHalf / lanes;
        const dim3 grid(static_cast<unsigned>(ceil_div(n_ff, rows)), static_cast<unsigned>(n_slots));
        // staged where every expert's row tiles of both matrices stay aligned to 4 bytes or more
        const size_t chunk = static_cast<size_t>(rows) * row_bytes;
        const int grain = 2 * chunk > kStageMaxBytes ? 0 : std::min(stage_grain(Wg, chunk, stride_g), stage_grain(Wu, chunk, stride_u));
        const size_t smem = grain ? 2 * chunk : 0;
        pdl_launch(glu_ids_kernel<U>, grid, 2 * kHalf, smem, stream)(
            static_cast<const uint8_t*>(Wg), static_cast<const uint8_t*>(Wu), row_bytes, stride_g, stride_u, n_units, n_ff,
            static_cast<const BlockQ8_1*>(xq), n_in / 32, x_group, ids, h, ldh, static_cast<BlockQ8_1*>(hq), counters,
            lanes, grain);
    });
    check_launch("mmvq_ids_glu");
}

void mmvq_ids_sum(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                  const void* xq, const int32_t* ids, const float* weights, int n_tok, int k, float* y, int64_t ldy,
                  cudaStream_t stream) {
    check_type(type, n_in, "mmvq_ids_sum");
    if (k < 1 || k > kMaxK) throw Error("mmvq_ids_sum: k " + std::to_string(k) + " is outside 1.." + std::to_string(kMaxK));
    if (n_tok > 65535) throw Error("mmvq_ids_sum: more than 65535 tokens");
    if (n_out <= 0 || n_tok <= 0) return;
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        const int n_units = static_cast<int>(n_in / U::kElems);
        const int lanes = units::lanes_for(n_units);
        const int warps = std::min(k, kSumWarps);
        const int rows = 32 / lanes;
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, rows)), static_cast<unsigned>(n_tok));
        const size_t chunk = static_cast<size_t>(rows) * row_bytes;
        const int grain = warps * chunk > kStageMaxBytes ? 0 : stage_grain(W, chunk, mat_stride);
        const size_t smem = grain ? warps * chunk : 0;
        pdl_launch(sum_ids_kernel<U>, grid, 32 * warps, smem, stream)(static_cast<const uint8_t*>(W), row_bytes, mat_stride, n_units,
                                                           n_out, static_cast<const BlockQ8_1*>(xq), n_in / 32, ids,
                                                           weights, k, y, ldy, lanes, grain);
    });
    check_launch("mmvq_ids_sum");
}

}  // namespace runtime::cuda
