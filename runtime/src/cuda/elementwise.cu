// Element-wise steps (SwiGLU, residual and bias adds, the MoE weighted sum) and the embedding lookup.
// Each rounds every operation as the CPU code does (explicit _rn intrinsics: no fused multiply-adds).
#include "cuda/pdl.cuh"
#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"
#include "cuda/swiglu_one.cuh"

namespace runtime::cuda {

namespace {

using gguf::GgmlType;
constexpr int kThreads = 256;

__global__ void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    out[i] = swiglu_one(gate[i], up[i]);
}

// grid.y = row; x over the row.
__global__ void swiglu_rows_kernel(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out,
                                   int64_t ldo, int64_t n) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const int64_t r = blockIdx.y;
    out[r * ldo + i] = swiglu_one(gate[r * ldg + i], up[r * ldu + i]);
}

// grid.y = row; x over the row.
__global__ void add_rows_kernel(float* x, int64_t ldx, const float* y, int64_t ldy, int64_t n) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    x[blockIdx.y * ldx + i] += y[blockIdx.y * ldy + i];
}

__global__ void moe_sum_kernel(float* x, int64_t ldx, const float* down, int64_t ld_down, const float* weights, int k,
                               int64_t n) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const int t = blockIdx.y;
    float acc = x[t * ldx + i];
    for (int j = 0; j < k; ++j) {
        const int64_t slot = static_cast<int64_t>(t) * k + j;
        acc = __fadd_rn(acc, __fmul_rn(weights[slot], down[slot * ld_down + i]));
    }
    x[t * ldx + i] = acc;
}

// The 6-bit scale and minimum of sub-block j of a Q4_K/Q5_K super-block (libquant's unpack_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// The 4-bit level of element j of a 32-block: the low nibble of byte j, or the high one of byte j - 16.
__device__ __forceinline__ int nibble32(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }

// Bit j of the 4 high-bit bytes of a Q5_0/Q5_1 block.
__device__ __forceinline__ int high_bit32(const uint8_t* qh, int j) { return (qh[j / 8] >> (j % 8)) & 1; }

// Element e of a table row, as libquant's dequantize_row computes it (same operations, each rounded).
__device__ float row_element(int type, const uint8_t* row, int64_t e) {
    using detail::half_bits_to_float;
    switch (type) {
        case 0: return reinterpret_cast<const float*>(row)[e];
        case 1: return half_bits_to_float(reinterpret_cast<const uint16_t*>(row)[e]);
        case 30: return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(row)[e]) << 16);
        case 2: {  // Q4_0: (q - 8) * d
            const auto* b = reinterpret_cast<const quant::BlockQ4_0*>(row) + e / 32;
            return __fmul_rn(static_cast<float>(nibble32(b->qs, e % 32) - 8), half_bits_to_float(b->d));
        }
        case 3: {  // Q4_1: q * d + m
            const auto* b = reinterpret_cast<const quant::BlockQ4_1*>(row) + e / 32;
            return __fadd_rn(__fmul_rn(static_cast<float>(nibble32(b->qs, e % 32)), half_bits_to_float(b->d)),
                             half_bits_to_float(b->m));
        }
        case 6: {  // Q5_0: (q - 16) * d
            const auto* b = reinterpret_cast<const quant::BlockQ5_0*>(row) + e / 32;
            const int j = static_cast<int>(e % 32);
            const int q = nibble32(b->qs, j) | (high_bit32(b->qh, j) << 4);
            return __fmul_rn(static_cast<float>(q - 16), half_bits_to_float(b->d));
        }
        case 7: {  // Q5_1: q * d + m
            const auto* b = reinterpret_cast<const quant::BlockQ5_1*>(row) + e / 32;
            const int j = static_cast<int>(e % 32);
            const int q = nibble32(b->qs, j) | (high_bit32(b->qh, j) << 4);
            return __fadd_rn(__fmul_rn(static_cast<float>(q), half_bits_to_float(b->d)), half_bits_to_float(b->m));
        }
        case 8: {  // Q8_0: q * d
            const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(row) + e / 32;
            return __fmul_rn(static_cast<float>(b->qs[e % 32]), half_bits_to_float(b->d));
        }
        case 12:
        case 13: {  // Q4_K, Q5_K: (d * sc) * q - (dmin * m) per 32-element sub-block
            const int r = static_cast<int>(e % 256), j = r / 32, c = r / 64, l = r % 32, hi = (r % 64) / 32;
            const uint8_t* scales;
            uint16_t d, dmin;
            int q;
            if (type == 12) {
                const auto* b = reinterpret_cast<const quant::BlockQ4_K*>(row) + e / 256;
                q = hi ? b->qs[32 * c + l] >> 4 : b->qs[32 * c + l] & 0xF;
                scales = b->scales;
                d = b->d;
                dmin = b->dmin;
            } else {
                const auto* b = reinterpret_cast<const quant::BlockQ5_K*>(row) + e / 256;
                q = (hi ? b->qs[32 * c + l] >> 4 : b->qs[32 * c + l] & 0xF) | (((b->qh[l] >> (2 * c + hi)) & 1) << 4);
                scales = b->scales;
                d = b->d;
                dmin = b->dmin;
            }
            int sc, m;
            scale_min_k4(j, scales, sc, m);
            const float dl = __fmul_rn(half_bits_to_float(d), static_cast<float>(sc));
            const float ml = __fmul_rn(half_bits_to_float(dmin), static_cast<float>(m));
            return __fsub_rn(__fmul_rn(dl, static_cast<float>(q)), ml);
        }
        default: {  // Q6_K: (d * scale) * (q - 32) per 16-element sub-block
            const auto* b = reinterpret_cast<const quant::BlockQ6_K*>(row) + e / 256;
            const int r = static_cast<int>(e % 256), half = r / 128, quarter = (r % 128) / 32, l = r % 32;
            const uint8_t* ql = b->ql + 64 * half;
            const uint8_t qh = b->qh[32 * half + l];
            const uint8_t lo = ql[l + 32 * (quarter & 1)];
            const int q = ((quarter < 2 ? (lo & 0xF) : (lo >> 4)) | (((qh >> (2 * quarter)) & 3) << 4)) - 32;
            const float d = __fmul_rn(half_bits_to_float(b->d), static_cast<float>(b->scales[r / 16]));
            return __fmul_rn(d, static_cast<float>(q));
        }
    }
}

__global__ void get_rows_kernel(int type, const uint8_t* table, size_t row_bytes, const int32_t* ids, int64_t n,
                                float* out, int64_t ldo) {
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const int t = blockIdx.y;
    out[t * ldo + i] = row_element(type, table + static_cast<size_t>(ids[t]) * row_bytes, i);
}

void check_rows(int n_rows, const char* op) {
    if (n_rows > 65535) throw Error(std::string(op) + ": " + std::to_string(n_rows) + " rows exceed one launch");
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
    if (n <= 0) return;
    pdl_launch(swiglu_kernel, detail::blocks_for(n, kThreads), kThreads, 0, stream)(gate, up, out, n);
    detail::check_launch("swiglu");
}

void swiglu_rows(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out, int64_t ldo, int64_t n,
                 int n_rows, cudaStream_t stream) {
    if (n <= 0 || n_rows <= 0) return;
    check_rows(n_rows, "swiglu_rows");
    pdl_launch(swiglu_rows_kernel, dim3(detail::blocks_for(n, kThreads), n_rows), kThreads, 0, stream)(gate, ldg, up, ldu, out,
                                                                                             ldo, n);
    detail::check_launch("swiglu_rows");
}

void add_rows(float* x, int64_t ldx, const float* y, int64_t ldy, int64_t n, int n_rows, cudaStream_t stream) {
    if (n <= 0 || n_rows <= 0) return;
    check_rows(n_rows, "add_rows");
    pdl_launch(add_rows_kernel, dim3(detail::blocks_for(n, kThreads), n_rows), kThreads, 0, stream)(x, ldx, y, ldy, n);
    detail::check_launch("add_rows");
}

void add_bias(float* y, int64_t ldy, const float* b, int64_t n, int n_rows, cudaStream_t stream) {
    if (n <= 0 || n_rows <= 0) return;
    check_rows(n_rows, "add_bias");
    pdl_launch(add_rows_kernel, dim3(detail::blocks_for(n, kThreads), n_rows), kThreads, 0, stream)(y, ldy, b, 0, n);
    detail::check_launch("add_bias");
}

void moe_weighted_sum(float* x, int64_t ldx, const float* down, int64_t ld_down, const float* weights, int n_tok,
                      int k, int64_t n, cudaStream_t stream) {
    if (n <= 0 || n_tok <= 0) return;
    check_rows(n_tok, "moe_weighted_sum");
    pdl_launch(moe_sum_kernel, dim3(detail::blocks_for(n, kThreads), n_tok), kThreads, 0, stream)(x, ldx, down, ld_down,
                                                                                         weights, k, n);
    detail::check_launch("moe_weighted_sum");
}

bool get_rows_supported(GgmlType type) {
    switch (type) {
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
        case GgmlType::Q4_0:
        case GgmlType::Q4_1:
        case GgmlType::Q5_0:
        case GgmlType::Q5_1:
        case GgmlType::Q8_0:
        case GgmlType::Q4_K:
        case GgmlType::Q5_K:
        case GgmlType::Q6_K: return true;
        default: return false;
    }
}

void get_rows_f32(GgmlType type, const void* table, size_t row_bytes, const int32_t* ids_dev, int n_tok, int64_t n,
                  float* out, int64_t ldo, cudaStream_t stream) {
    if (n <= 0 || n_tok <= 0) return;
    if (!get_rows_supported(type)) {
        throw Error("get_rows_f32: table type " + std::string(gguf::type_name(type)) + " unsupported");
    }
    if (n % gguf::type_traits(type).block_size != 0) throw Error("get_rows_f32: row is not a whole number of blocks");
    check_rows(n_tok, "get_rows_f32");
    get_rows_kernel<<<dim3(detail::blocks_for(n, kThreads), n_tok), kThreads, 0, stream>>>(
        static_cast<int>(type), static_cast<const uint8_t*>(table), row_bytes, ids_dev, n, out, ldo);
    detail::check_launch("get_rows_f32");
}

}  // namespace runtime::cuda
