// Mat-vec for float weights (F32, F16, BF16) and float activations, for decode: the same segment layout
// as mmvq (a power-of-two group of threads per row, consecutive threads on consecutive 8-element
// chunks, each chunk dotted with every token), 16-byte loads where rows and activations are aligned.
#include "cuda/pdl.cuh"
#include "cuda/quant_units.cuh"

namespace runtime::cuda {

namespace {

constexpr int kThreads = 128;

template <GgmlType T>
__device__ __forceinline__ float weight_at(const uint8_t* row, int64_t i) {
    if constexpr (T == GgmlType::F32) return reinterpret_cast<const float*>(row)[i];
    else if constexpr (T == GgmlType::F16) return half_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
    else return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(row)[i]) << 16);
}

// Elements 8c .. 8c+7 of a row.
template <GgmlType T, bool kAligned>
__device__ __forceinline__ void load8(const uint8_t* row, int64_t c, float (&w)[8]) {
    if constexpr (kAligned && T == GgmlType::F32) {
        const float4 a = reinterpret_cast<const float4*>(row)[2 * c], b = reinterpret_cast<const float4*>(row)[2 * c + 1];
        w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w; w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
    } else if constexpr (kAligned) {
        const uint4 q = reinterpret_cast<const uint4*>(row)[c];
        const uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            if constexpr (T == GgmlType::F16) {
                w[2 * k] = half_bits_to_float(static_cast<uint16_t>(words[k] & 0xffff));
                w[2 * k + 1] = half_bits_to_float(static_cast<uint16_t>(words[k] >> 16));
            } else {
                w[2 * k] = __uint_as_float(words[k] << 16);
                w[2 * k + 1] = __uint_as_float(words[k] & 0xffff0000u);
            }
        }
    } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) w[j] = weight_at<T>(row, 8 * c + j);
    }
}

template <bool kAligned>
__device__ __forceinline__ float dot8(const float (&w)[8], const float* x, int64_t c) {
    if constexpr (kAligned) {
        const float4 a = reinterpret_cast<const float4*>(x)[2 * c], b = reinterpret_cast<const float4*>(x)[2 * c + 1];
        return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y + w[6] * b.z + w[7] * b.w;
    } else {
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < 8; ++j) s += w[j] * x[8 * c + j];
        return s;
    }
}

// One row against kNT activation rows xs[t] (first n_valid used).
template <GgmlType T, bool kAligned, int kNT>
__device__ __forceinline__ void row_dot_float(const uint8_t* row, int64_t n_in, int lane, int lanes,
                                              const float* const (&xs)[kNT], float (&acc)[kNT]) {
    const int64_t n_chunks = n_in / 8;
    // unrolled so that several chunks' loads are in flight before the first is summed (rows of a few
    // chunks per lane, as the router's, otherwise wait a full memory latency per chunk)
#pragma unroll 4
    for (int64_t c = lane; c < n_chunks; c += lanes) {
        float w[8];
        load8<T, kAligned>(row, c, w);
#pragma unroll
        for (int t = 0; t < kNT; ++t) acc[t] += dot8<kAligned>(w, xs[t], c);
    }
    for (int64_t i = n_chunks * 8 + lane; i < n_in; i += lanes) {  // a tail shorter than 8
        const float wi = weight_at<T>(row, i);
#pragma unroll
        for (int t = 0; t < kNT; ++t) acc[t] += wi * xs[t][i];
    }
}

template <GgmlType T, bool kAligned, int kNT>
__global__ void __launch_bounds__(kThreads) mmv_float_kernel(const uint8_t* W, size_t row_bytes, int64_t n_in, int64_t n_out,
                                                             const float* x, int64_t ldx, float* y, int64_t ldy, int lanes) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * (kThreads / lanes) + seg;
    const bool valid = r < n_out;
    const float* xs[kNT];
#pragma unroll
    for (int t = 0; t < kNT; ++t) xs[t] = x + t * ldx;
    float acc[kNT] = {};
    if (valid) row_dot_float<T, kAligned, kNT>(W + r * row_bytes, n_in, lane, lanes, xs, acc);
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
        const float v = units::segment_sum(acc[t], lanes);
        if (valid && lane == 0) y[t * ldy + r] = v;
    }
}

template <GgmlType T, bool kAligned>
__global__ void __launch_bounds__(kThreads) mmv_float_ids_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride,
                                                                 int64_t n_in, int64_t n_out, const float* x, int64_t ldx,
                                                                 int x_group, const int32_t* ids, float* y, int64_t ldy,
                                                                 int lanes) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int slot = blockIdx.y;
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * (kThreads / lanes) + seg;
    const int32_t e = ids[slot];
    const bool valid = r < n_out;
    const float* xs[1] = {x + static_cast<int64_t>(slot / x_group) * ldx};
    float acc[1] = {0.f};
    if (valid && e >= 0) row_dot_float<T, kAligned, 1>(W + e * mat_stride + r * row_bytes, n_in, lane, lanes, xs, acc);
    const float v = units::segment_sum(acc[0], lanes);
    if (valid && lane == 0) y[slot * ldy + r] = v;
}

template <class F>
void dispatch_float(GgmlType type, bool aligned, F&& f) {
    auto with = [&](auto tag) {
        if (aligned) f(tag, std::true_type{});
        else f(tag, std::false_type{});
    };
    switch (type) {
        case GgmlType::F32: with(std::integral_constant<GgmlType, GgmlType::F32>{}); break;
        case GgmlType::F16: with(std::integral_constant<GgmlType, GgmlType::F16>{}); break;
        case GgmlType::BF16: with(std::integral_constant<GgmlType, GgmlType::BF16>{}); break;
        default: throw Error("mmv_float: type " + std::to_string(static_cast<int>(type)) + " is not a float type");
    }
}

// 16-byte loads need 16-byte aligned rows and activation rows, and 8-element chunks.
bool all_aligned(const void* W, size_t row_bytes, size_t mat_stride, const float* x, int64_t ldx, int64_t n_in) {
    return reinterpret_cast<uintptr_t>(W) % 16 == 0 && row_bytes % 16 == 0 && mat_stride % 16 == 0 &&
           reinterpret_cast<uintptr_t>(x) % 16 == 0 && ldx % 4 == 0 && n_in % 8 == 0;
}

int lanes_for_float(int64_t n_in) { return units::lanes_for((n_in + 7) / 8); }

}  // namespace

bool mmv_float_supported(GgmlType type) {
    return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

void mmv_float(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_out, const float* x, int64_t ldx,
               int n_tok, float* y, int64_t ldy, cudaStream_t stream) {
    if (n_tok < 1 || n_tok > kMaxTokens) throw Error("mmv_float: n_tok " + std::to_string(n_tok) + " is outside 1..8");
    if (n_in <= 0) throw Error("mmv_float: n_in must be positive");
    if (n_out <= 0) return;
    const int lanes = lanes_for_float(n_in);
    const unsigned blocks = static_cast<unsigned>(ceil_div(n_out, kThreads / lanes));
    const auto* w = static_cast<const uint8_t*>(W);
    dispatch_float(type, all_aligned(W, row_bytes, 0, x, ldx, n_in), [&](auto tag, auto aligned) {
        constexpr GgmlType T = decltype(tag)::value;
        constexpr bool A = decltype(aligned)::value;
        switch (n_tok) {
            case 1: pdl_launch(mmv_float_kernel<T, A, 1>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            case 2: pdl_launch(mmv_float_kernel<T, A, 2>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            case 3: pdl_launch(mmv_float_kernel<T, A, 3>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            case 4: pdl_launch(mmv_float_kernel<T, A, 4>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            case 5: pdl_launch(mmv_float_kernel<T, A, 5>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            case 6: pdl_launch(mmv_float_kernel<T, A, 6>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            case 7: pdl_launch(mmv_float_kernel<T, A, 7>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
            default: pdl_launch(mmv_float_kernel<T, A, 8>, blocks, kThreads, 0, stream)(w, row_bytes, n_in, n_out, x, ldx, y, ldy, lanes); break;
        }
    });
    check_launch("mmv_float");
}

void mmv_float_ids(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                   const float* x, int64_t ldx, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy,
                   cudaStream_t stream) {
    if (n_in <= 0) throw Error("mmv_float_ids: n_in must be positive");
    if (x_group < 1) throw Error("mmv_float_ids: x_group must be at least 1");
    if (n_slots > 65535) throw Error("mmv_float_ids: more than 65535 slots");
    if (n_out <= 0 || n_slots <= 0) return;
    const int lanes = lanes_for_float(n_in);
    const dim3 grid(static_cast<unsigned>(ceil_div(n_out, kThreads / lanes)), static_cast<unsigned>(n_slots));
    dispatch_float(type, all_aligned(W, row_bytes, mat_stride, x, ldx, n_in), [&](auto tag, auto aligned) {
        pdl_launch(mmv_float_ids_kernel<decltype(tag)::value, decltype(aligned)::value>, grid, kThreads, 0, stream)(
            static_cast<const uint8_t*>(W), row_bytes, mat_stride, n_in, n_out, x, ldx, x_group, ids, y, ldy, lanes);
    });
    check_launch("mmv_float_ids");
}

}  // namespace runtime::cuda
