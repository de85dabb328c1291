// Stores a batch's keys or values into the cache rows at *pos0_dev + t, converting to the cache type.
#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"

namespace runtime::cuda {

namespace {

using gguf::GgmlType;

// One thread per element (F32, F16).
template <typename Out>
__global__ void store_plain(const float* src, int64_t ld_src, int n_tok, int64_t n, uint8_t* cache, size_t row_bytes,
                            const int32_t* pos0_dev) {
    const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (item >= n_tok * n) return;
    const int t = static_cast<int>(item / n);
    const int64_t i = item % n;
    Out* row = reinterpret_cast<Out*>(cache + static_cast<size_t>(*pos0_dev + t) * row_bytes);
    const float v = src[t * ld_src + i];
    if constexpr (sizeof(Out) == 4) {
        row[i] = v;
    } else {
        row[i] = detail::float_to_half_bits(v);
    }
}

// One thread per 32-block, quantizing exactly as libquant's q8_0_quantize: d = amax / 127,
// q = round half away from zero of x * (1/d).
__global__ void store_q8_0(const float* src, int64_t ld_src, int n_tok, int64_t n, uint8_t* cache, size_t row_bytes,
                           const int32_t* pos0_dev) {
    const int64_t nb = n / 32;
    const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (item >= n_tok * nb) return;
    const int t = static_cast<int>(item / nb);
    const int64_t b = item % nb;
    const float* x = src + t * ld_src + b * 32;
    auto* y = reinterpret_cast<quant::BlockQ8_0*>(cache + static_cast<size_t>(*pos0_dev + t) * row_bytes) + b;
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    y->d = detail::float_to_half_bits(d);
    for (int j = 0; j < 32; ++j) y->qs[j] = static_cast<int8_t>(roundf(__fmul_rn(x[j], id)));
}

// As libquant's q4_0_quantize without imatrix: the value of largest magnitude (first on ties) maps to
// level -8, d = max / -8, level = min(15, int(x * (1/d) + 8.5)).
__global__ void store_q4_0(const float* src, int64_t ld_src, int n_tok, int64_t n, uint8_t* cache, size_t row_bytes,
                           const int32_t* pos0_dev) {
    const int64_t nb = n / 32;
    const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (item >= n_tok * nb) return;
    const int t = static_cast<int>(item / nb);
    const int64_t b = item % nb;
    const float* x = src + t * ld_src + b * 32;
    auto* y = reinterpret_cast<quant::BlockQ4_0*>(cache + static_cast<size_t>(*pos0_dev + t) * row_bytes) + b;
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; ++j) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = __fdiv_rn(max, -8.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    y->d = detail::float_to_half_bits(d);
    int L[32];
    for (int j = 0; j < 32; ++j) L[j] = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j], id), 8.5f)));
    for (int j = 0; j < 16; ++j) y->qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
}

}  // namespace

void kv_store(GgmlType type, const float* src, int64_t ld_src, int n_tok, int64_t n, void* cache, size_t row_bytes,
              const int32_t* pos0_dev, cudaStream_t stream) {
    if (n_tok <= 0 || n <= 0) return;
    auto* c = static_cast<uint8_t*>(cache);
    constexpr int kThreads = 256;
    const int64_t count = n_tok * n;
    switch (type) {
        case GgmlType::F32:
            store_plain<float><<<detail::blocks_for(count, kThreads), kThreads, 0, stream>>>(src, ld_src, n_tok, n, c,
                                                                                            row_bytes, pos0_dev);
            break;
        case GgmlType::F16:
            store_plain<uint16_t><<<detail::blocks_for(count, kThreads), kThreads, 0, stream>>>(src, ld_src, n_tok, n, c,
                                                                                               row_bytes, pos0_dev);
            break;
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            if (n % 32 != 0) throw Error("kv_store: row of " + std::to_string(n) + " is not a multiple of 32");
            if (type == GgmlType::Q8_0) {
                store_q8_0<<<detail::blocks_for(count / 32, kThreads), kThreads, 0, stream>>>(src, ld_src, n_tok, n, c,
                                                                                            row_bytes, pos0_dev);
            } else {
                store_q4_0<<<detail::blocks_for(count / 32, kThreads), kThreads, 0, stream>>>(src, ld_src, n_tok, n, c,
                                                                                            row_bytes, pos0_dev);
            }
            break;
        default:
            throw Error("kv_store: KV cache type " + std::string(gguf::type_name(type)) + " unsupported");
    }
    detail::check_launch("kv_store");
}

}  // namespace runtime::cuda
