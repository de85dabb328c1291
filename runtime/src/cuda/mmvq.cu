// Quantized mat-vec for decode: weight rows of any mmvq type times up to 8 q8_1 activation rows, and the
// MoE form that picks each slot's matrix by an expert id read on the device.
//
// Layout of the work: a "segment" of `lanes` threads (a power of two up to a warp, enough to cover a
// row's units once when rows are short) owns one weight row; consecutive threads take consecutive units,
// so a warp reads a contiguous span of the row. Every unit is decoded to int8 words once and dotted with
// all tokens' activations (which stay in L1/L2: every row reads the same ones).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cuda/pdl.cuh"
#include "cuda/quant_units.cuh"
#include "cuda/stage_rows.cuh"

namespace runtime::cuda {

namespace {

constexpr int kThreads = 128;

// The matrices of one launch: matrix m takes blocks [first_block[m], first_block[m + 1]).
struct Mats {
    const uint8_t* W[kMmvqMaxMats];
    size_t row_bytes[kMmvqMaxMats];
    int64_t n_out[kMmvqMaxMats];
    float* y[kMmvqMaxMats];
    int64_t ldy[kMmvqMaxMats];
    unsigned first_block[kMmvqMaxMats + 1];
};

// With grain > 0, the block's rows go through shared memory first, copied with loads of `grain` bytes
// (stage_rows.cuh).
template <class U, int kNT>
__global__ void __launch_bounds__(kThreads) mmvq_kernel(Mats mats, int n_units, const BlockQ8_1* x,
                                                        int64_t x_row_blocks, int lanes, int grain) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    extern __shared__ uint4 staged[];
    int m = 0;
#pragma unroll
    for (int i = 1; i < kMmvqMaxMats; ++i) m += blockIdx.x >= mats.first_block[i];
    const uint8_t* W = mats.W[m];
    const size_t row_bytes = mats.row_bytes[m];
    const int64_t n_out = mats.n_out[m], ldy = mats.ldy[m];
    float* y = mats.y[m];
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r0 = static_cast<int64_t>(blockIdx.x - mats.first_block[m]) * (kThreads / lanes);
    const int64_t r = r0 + seg;
    const bool valid = r < n_out;
    const uint8_t* row = W + r * row_bytes;
    if (grain) {
        const int64_t n_rows = min(static_cast<int64_t>(kThreads / lanes), n_out - r0);
        stage_copy(W + r0 * row_bytes, static_cast<size_t>(n_rows) * row_bytes, reinterpret_cast<uint8_t*>(staged), threadIdx.x,
                   kThreads, grain);
        __syncthreads();
        row = reinterpret_cast<const uint8_t*>(staged) + seg * row_bytes;
    }
    const BlockQ8_1* xs[kNT];
#pragma unroll
    for (int t = 0; t < kNT; ++t) xs[t] = x + t * x_row_blocks;
    float acc[kNT] = {};
    if (valid) units::row_dot<U, kNT>(row, n_units, lane, lanes, xs, kNT, acc);
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
        const float v = units::segment_sum(acc[t], lanes);
        if (valid && lane == 0) y[t * ldy + r] = v;
    }
}

// One slot per blockIdx.y: matrix ids[slot], activation row slot / x_group. With W2, the blocks from
// `half` on take the second matrix set (W2 into y2) over the same slots: gate and up in one launch.
template <class U>
__global__ void __launch_bounds__(kThreads) mmvq_ids_kernel(const uint8_t* W, const uint8_t* W2, size_t row_bytes,
                                                            size_t mat_stride, int n_units, int64_t n_out,
                                                            const BlockQ8_1* x, int64_t x_row_blocks, int x_group,
                                                            const int32_t* ids, float* y, float* y2, int64_t ldy,
                                                            int lanes, unsigned half) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const bool second = blockIdx.x >= half;
    const uint8_t* mats = second ? W2 : W;
    float* out = second ? y2 : y;
    const int slot = blockIdx.y;
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x - (second ? half : 0u)) * (kThreads / lanes) + seg;
    const int32_t e = ids[slot];
    const bool valid = r < n_out;
    const BlockQ8_1* xs[1] = {x + static_cast<int64_t>(slot / x_group) * x_row_blocks};
    float acc[1] = {0.f};
    if (valid && e >= 0) units::row_dot<U, 1>(mats + e * mat_stride + r * row_bytes, n_units, lane, lanes, xs, 1, acc);
    const float v = units::segment_sum(acc[0], lanes);
    if (valid && lane == 0) out[slot * ldy + r] = v;
}

// The down projection and the weighted sum of a token's k slots (blockIdx.y = token): segment
// (row i, slot j) of the block dots row r0 + i of matrix ids[t k + j] with activation row t k + j and
// scales it by the slot's weight; then thread i sums the k products in slot order, as moe_weighted_sum
// does from zero.
constexpr int kWeightedThreads = 256;

template <class U>
__global__ void __launch_bounds__(kWeightedThreads) mmvq_ids_weighted_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride,
                                                                     int n_units, int64_t n_out, const BlockQ8_1* x,
                                                                     int64_t x_row_blocks, const int32_t* ids,
                                                                     const float* weights, int k, float* out,
                                                                     int64_t ldo, int lanes, int rows_per_block) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    __shared__ float dots[kWeightedThreads];
    const int t = blockIdx.y;
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int i = seg / k, j = seg % k;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * rows_per_block + i;
    const bool valid = i < rows_per_block && r < n_out;
    const int slot = t * k + j;
    const int32_t e = valid ? ids[slot] : -1;
    const float weight = valid ? weights[slot] : 0.f;
    const BlockQ8_1* xs[1] = {x + static_cast<int64_t>(slot) * x_row_blocks};
    float acc[1] = {0.f};
    if (e >= 0) units::row_dot<U, 1>(W + e * mat_stride + r * row_bytes, n_units, lane, lanes, xs, 1, acc);
    const float v = units::segment_sum(acc[0], lanes);
    if (lane == 0 && i < rows_per_block) dots[i * k + j] = __fmul_rn(weight, v);
    __syncthreads();
    const int64_t ro = static_cast<int64_t>(blockIdx.x) * rows_per_block + threadIdx.x;
    if (threadIdx.x < rows_per_block && ro < n_out) {
        float sum = 0.f;
        for (int jj = 0; jj < k; ++jj) sum = __fadd_rn(sum, dots[threadIdx.x * k + jj]);
        out[t * ldo + ro] = sum;
    }
}

void check_shape(GgmlType type, int64_t n_in, const char* what) {
    if (!mmvq_supported(type)) throw Error(std::string(what) + ": type " + std::to_string(static_cast<int>(type)) + " has no int8 kernel");
    const int64_t block = (type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::Q4_K ||
                           type == GgmlType::Q5_K || type == GgmlType::Q6_K || type == GgmlType::IQ4_XS) ? 256 : 32;
    if (n_in <= 0 || n_in % block != 0) throw Error(std::string(what) + ": n_in " + std::to_string(n_in) + " is not a multiple of " + std::to_string(block));
}

template <class U, int kNT>
void launch_mmvq(const MmvqMat* mats, int n_mats, int64_t n_in, const void* xq, cudaStream_t stream) {
    const int n_units = static_cast<int>(n_in / U::kElems);
    const int lanes = units::lanes_for(n_units);
    const int64_t rows_per_block = kThreads / lanes;
    Mats a{};
    unsigned blocks = 0;
    int grain = 16;  // the narrowest any matrix needs; 0 when one cannot be staged
    for (int m = 0; m < kMmvqMaxMats; ++m) {
        a.first_block[m] = blocks;
        if (m >= n_mats) continue;
        grain = std::min(grain, stage_grain(mats[m].W, mats[m].row_bytes * static_cast<size_t>(rows_per_block), 0));
        a.W[m] = static_cast<const uint8_t*>(mats[m].W);
        a.row_bytes[m] = mats[m].row_bytes;
        a.n_out[m] = mats[m].n_out;
        a.y[m] = mats[m].y;
        a.ldy[m] = mats[m].ldy;
        blocks += static_cast<unsigned>(ceil_div(mats[m].n_out, rows_per_block));
    }
    a.first_block[kMmvqMaxMats] = blocks;
    if (blocks == 0) return;
    // every matrix of the launch stages, or none: the shared memory is sized for the widest rows
    size_t smem = 0;
    for (int m = 0; grain && m < n_mats; ++m) smem = std::max(smem, mats[m].row_bytes * static_cast<size_t>(rows_per_block));
    pdl_launch(mmvq_kernel<U, kNT>, blocks, kThreads, smem, stream)(a, n_units, static_cast<const BlockQ8_1*>(xq), n_in / 32, lanes,
                                                           grain);
}

// -1: not decided yet (GGUF_CUDA_STAGE=1 turns it on at first use), 0 off, 1 on
std::atomic<int> g_staging{-1};

}  // namespace

bool staging_enabled() {
    int s = g_staging.load(std::memory_order_relaxed);
    if (s < 0) {
        const char* v = std::getenv("GGUF_CUDA_STAGE");
        s = v && std::strcmp(v, "1") == 0 ? 1 : 0;
        int expected = -1;
        g_staging.compare_exchange_strong(expected, s);
        s = g_staging.load(std::memory_order_relaxed);
    }
    return s == 1;
}

void set_weight_staging(bool on) { g_staging.store(on ? 1 : 0); }

bool mmvq_supported(GgmlType type) {
    return units::dispatch(type, [](auto) {});
}

void mmvq_multi(GgmlType type, const MmvqMat* mats, int n_mats, int64_t n_in, const void* xq, int n_tok,
                cudaStream_t stream) {
    check_shape(type, n_in, "mmvq");
    if (n_tok < 1 || n_tok > kMaxTokens) throw Error("mmvq: n_tok " + std::to_string(n_tok) + " is outside 1..8");
    if (n_mats < 1 || n_mats > kMmvqMaxMats) throw Error("mmvq_multi: " + std::to_string(n_mats) + " matrices (1..4)");
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        switch (n_tok) {
            case 1: launch_mmvq<U, 1>(mats, n_mats, n_in, xq, stream); break;
            case 2: launch_mmvq<U, 2>(mats, n_mats, n_in, xq, stream); break;
            case 3: launch_mmvq<U, 3>(mats, n_mats, n_in, xq, stream); break;
            case 4: launch_mmvq<U, 4>(mats, n_mats, n_in, xq, stream); break;
            case 5: launch_mmvq<U, 5>(mats, n_mats, n_in, xq, stream); break;
            case 6: launch_mmvq<U, 6>(mats, n_mats, n_in, xq, stream); break;
            case 7: launch_mmvq<U, 7>(mats, n_mats, n_in, xq, stream); break;
            default: launch_mmvq<U, 8>(mats, n_mats, n_in, xq, stream); break;
        }
    });
    check_launch("mmvq");
}

void mmvq(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_out, const void* xq, int n_tok,
          float* y, int64_t ldy, cudaStream_t stream) {
    const MmvqMat m{W, row_bytes, n_out, y, ldy};
    mmvq_multi(type, &m, 1, n_in, xq, n_tok, stream);
}

void mmvq_ids_pair(GgmlType type, const void* W, const void* W2, size_t row_bytes, size_t mat_stride, int64_t n_in,
                   int64_t n_out, const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, float* y2,
                   int64_t ldy, cudaStream_t stream) {
    check_shape(type, n_in, "mmvq_ids");
    if (x_group < 1) throw Error("mmvq_ids: x_group must be at least 1");
    if (n_slots > 65535) throw Error("mmvq_ids: more than 65535 slots");
    if (n_out <= 0 || n_slots <= 0) return;
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        const int n_units = static_cast<int>(n_in / U::kElems);
        const int lanes = units::lanes_for(n_units);
        const unsigned half = static_cast<unsigned>(ceil_div(n_out, kThreads / lanes));
        const dim3 grid(W2 ? 2 * half : half, static_cast<unsigned>(n_slots));
        pdl_launch(mmvq_ids_kernel<U>, grid, kThreads, 0, stream)(static_cast<const uint8_t*>(W), static_cast<const uint8_t*>(W2),
                                                          row_bytes, mat_stride, n_units, n_out,
                                                          static_cast<const BlockQ8_1*>(xq), n_in / 32, x_group, ids, y, y2,
                                                          ldy, lanes, half);
    });
    check_launch("mmvq_ids");
}

void mmvq_ids(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
              const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy, cudaStream_t stream) {
    mmvq_ids_pair(type, W, nullptr, row_bytes, mat_stride, n_in, n_out, xq, x_group, ids, n_slots, y, nullptr, ldy, stream);
}

void mmvq_ids_weighted(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                       const void* xq, const int32_t* ids, const float* weights, int n_tok, int k, float* out,
                       int64_t ldo, cudaStream_t stream) {
    check_shape(type, n_in, "mmvq_ids_weighted");
    if (k < 1 || k > kMmvqWeightedMaxK) {
        throw Error("mmvq_ids_weighted: k " + std::to_string(k) + " is outside 1.." + std::to_string(kMmvqWeightedMaxK));
    }
    if (n_tok > 65535) throw Error("mmvq_ids_weighted: more than 65535 tokens");
    if (n_out <= 0 || n_tok <= 0) return;
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        const int n_units = static_cast<int>(n_in / U::kElems);
        // the lanes of mmvq_ids (the same sums, bit for bit) unless k segments of a row would not fit the block
        int lanes = units::lanes_for(n_units);
        while (lanes * k > kWeightedThreads) lanes /= 2;
        const int rows_per_block = std::max(1, kThreads / (lanes * k));
        const int threads = static_cast<int>(ceil_div(rows_per_block * lanes * k, 32)) * 32;
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, rows_per_block)), static_cast<unsigned>(n_tok));
        pdl_launch(mmvq_ids_weighted_kernel<U>, grid, threads, 0, stream)(
            static_cast<const uint8_t*>(W), row_bytes, mat_stride, n_units, n_out, static_cast<const BlockQ8_1*>(xq), n_in / 32,
            ids, weights, k, out, ldo, lanes, rows_per_block);
    });
    check_launch("mmvq_ids_weighted");
}

}  // namespace runtime::cuda
