// Quantized mat-vec for decode: weight rows of any mmvq type times up to 8 q8_1 activation rows, and the
// MoE form that picks each slot's matrix by an expert id read on the device.
//
// Layout of the work: a "segment" of `lanes` threads (a power of two up to a warp, enough to cover a
// row's units once when rows are short) owns one weight row; consecutive threads take consecutive units,
// so a warp reads a contiguous span of the row. Every unit is decoded to int8 words once and dotted with
// all tokens' activations (which stay in L1/L2: every row reads the same ones).
#include "cuda/quant_units.cuh"

namespace runtime::cuda {

namespace {

constexpr int kThreads = 128;

template <class U, int kNT>
__global__ void __launch_bounds__(kThreads) mmvq_kernel(const uint8_t* W, size_t row_bytes, int n_units, int64_t n_out,
                                                        const BlockQ8_1* x, int64_t x_row_blocks, float* y,
                                                        int64_t ldy, int lanes) {
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * (kThreads / lanes) + seg;
    const bool valid = r < n_out;
    const BlockQ8_1* xs[kNT];
#pragma unroll
    for (int t = 0; t < kNT; ++t) xs[t] = x + t * x_row_blocks;
    float acc[kNT] = {};
    if (valid) units::row_dot<U, kNT>(W + r * row_bytes, n_units, lane, lanes, xs, kNT, acc);
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
        const float v = units::segment_sum(acc[t], lanes);
        if (valid && lane == 0) y[t * ldy + r] = v;
    }
}

// One slot per blockIdx.y: matrix ids[slot], activation row slot / x_group.
template <class U>
__global__ void __launch_bounds__(kThreads) mmvq_ids_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride,
                                                            int n_units, int64_t n_out, const BlockQ8_1* x,
                                                            int64_t x_row_blocks, int x_group, const int32_t* ids,
                                                            float* y, int64_t ldy, int lanes) {
    const int slot = blockIdx.y;
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * (kThreads / lanes) + seg;
    const int32_t e = ids[slot];
    const bool valid = r < n_out;
    const BlockQ8_1* xs[1] = {x + static_cast<int64_t>(slot / x_group) * x_row_blocks};
    float acc[1] = {0.f};
    if (valid && e >= 0) units::row_dot<U, 1>(W + e * mat_stride + r * row_bytes, n_units, lane, lanes, xs, 1, acc);
    const float v = units::segment_sum(acc[0], lanes);
    if (valid && lane == 0) y[slot * ldy + r] = v;
}

void check_shape(GgmlType type, int64_t n_in, const char* what) {
    if (!mmvq_supported(type)) throw Error(std::string(what) + ": type " + std::to_string(static_cast<int>(type)) + " has no int8 kernel");
    const int64_t block = (type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::Q4_K ||
                           type == GgmlType::Q5_K || type == GgmlType::Q6_K || type == GgmlType::IQ4_XS) ? 256 : 32;
    if (n_in <= 0 || n_in % block != 0) throw Error(std::string(what) + ": n_in " + std::to_string(n_in) + " is not a multiple of " + std::to_string(block));
}

template <class U, int kNT>
void launch_mmvq(const void* W, size_t row_bytes, int64_t n_in, int64_t n_out, const void* xq, float* y, int64_t ldy,
                 cudaStream_t stream) {
    const int n_units = static_cast<int>(n_in / U::kElems);
    const int lanes = units::lanes_for(n_units);
    const int64_t rows_per_block = kThreads / lanes;
    mmvq_kernel<U, kNT><<<static_cast<unsigned>(ceil_div(n_out, rows_per_block)), kThreads, 0, stream>>>(
        static_cast<const uint8_t*>(W), row_bytes, n_units, n_out, static_cast<const BlockQ8_1*>(xq), n_in / 32, y,
        ldy, lanes);
}

}  // namespace

bool mmvq_supported(GgmlType type) {
    return units::dispatch(type, [](auto) {});
}

void mmvq(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_out, const void* xq, int n_tok,
          float* y, int64_t ldy, cudaStream_t stream) {
    check_shape(type, n_in, "mmvq");
    if (n_tok < 1 || n_tok > kMaxTokens) throw Error("mmvq: n_tok " + std::to_string(n_tok) + " is outside 1..8");
    if (n_out <= 0) return;
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        switch (n_tok) {
            case 1: launch_mmvq<U, 1>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            case 2: launch_mmvq<U, 2>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            case 3: launch_mmvq<U, 3>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            case 4: launch_mmvq<U, 4>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            case 5: launch_mmvq<U, 5>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            case 6: launch_mmvq<U, 6>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            case 7: launch_mmvq<U, 7>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
            default: launch_mmvq<U, 8>(W, row_bytes, n_in, n_out, xq, y, ldy, stream); break;
        }
    });
    check_launch("mmvq");
}

void mmvq_ids(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
              const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy, cudaStream_t stream) {
    check_shape(type, n_in, "mmvq_ids");
    if (x_group < 1) throw Error("mmvq_ids: x_group must be at least 1");
    if (n_slots > 65535) throw Error("mmvq_ids: more than 65535 slots");
    if (n_out <= 0 || n_slots <= 0) return;
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        const int n_units = static_cast<int>(n_in / U::kElems);
        const int lanes = units::lanes_for(n_units);
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, kThreads / lanes)), static_cast<unsigned>(n_slots));
        mmvq_ids_kernel<U><<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(W), row_bytes, mat_stride, n_units,
                                                          n_out, static_cast<const BlockQ8_1*>(xq), n_in / 32, x_group,
                                                          ids, y, ldy, lanes);
    });
    check_launch("mmvq_ids");
}

}  // namespace runtime::cuda
