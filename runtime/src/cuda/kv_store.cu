// Stores a batch's keys and/or values into the cache rows at *pos0_dev + t, converting to the cache type.
#include <algorithm>

#include "cuda/op_common.cuh"
#include "cuda/op_kernels.h"

namespace runtime::cuda {

namespace {

using gguf::GgmlType;

// One store: n_tok rows of n floats into a cache of `type`.
struct StoreJob {
    int type;
    const float* src;
    int64_t ld_src;
    uint8_t* cache;
    size_t row_bytes;
    int64_t units;  // per row: elements (F32, F16) or 32-blocks (Q8_0, Q4_0)
};

// As libquant's q8_0_quantize: d = amax / 127, q = round half away from zero of x * (1/d).
__device__ void quantize_q8_0(const float* x, quant::BlockQ8_0* y) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    y->d = detail::float_to_half_bits(d);
    for (int j = 0; j < 32; ++j) y->qs[j] = static_cast<int8_t>(roundf(__fmul_rn(x[j], id)));
}

// As libquant's q4_0_quantize without imatrix: the value of largest magnitude (the first on ties) maps to
// level -8, d = max / -8, level = min(15, int(x * (1/d) + 8.5)).
__device__ void quantize_q4_0(const float* x, quant::BlockQ4_0* y) {
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

// grid.y picks the job (keys, values); one thread per unit of one token's row.
__global__ void store_kernel(StoreJob k, StoreJob v, int n_tok, const int32_t* pos0_dev) {
    const StoreJob& job = blockIdx.y == 0 ? k : v;
    const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (item >= n_tok * job.units) return;
    const int t = static_cast<int>(item / job.units);
    const int64_t u = item % job.units;
    uint8_t* row = job.cache + static_cast<size_t>(*pos0_dev + t) * job.row_bytes;
    const float* x = job.src + t * job.ld_src;
    switch (job.type) {
        case 0: reinterpret_cast<float*>(row)[u] = x[u]; break;
        case 1: reinterpret_cast<uint16_t*>(row)[u] = detail::float_to_half_bits(x[u]); break;
        case 8: quantize_q8_0(x + 32 * u, reinterpret_cast<quant::BlockQ8_0*>(row) + u); break;
        default: quantize_q4_0(x + 32 * u, reinterpret_cast<quant::BlockQ4_0*>(row) + u); break;
    }
}

StoreJob make_job(GgmlType type, const float* src, int64_t ld_src, int64_t n, void* cache, size_t row_bytes) {
    switch (type) {
        case GgmlType::F32:
        case GgmlType::F16: return {static_cast<int>(type), src, ld_src, static_cast<uint8_t*>(cache), row_bytes, n};
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            if (n % 32 != 0) throw Error("kv_store: row of " + std::to_string(n) + " is not a multiple of 32");
            return {static_cast<int>(type), src, ld_src, static_cast<uint8_t*>(cache), row_bytes, n / 32};
        default:
            throw Error("kv_store: KV cache type " + std::string(gguf::type_name(type)) + " unsupported");
    }
}

void launch(const StoreJob& k, const StoreJob& v, int n_jobs, int n_tok, const int32_t* pos0_dev,
            cudaStream_t stream) {
    constexpr int kThreads = 256;
    const int64_t units = std::max(k.units, n_jobs > 1 ? v.units : 0);
    store_kernel<<<dim3(detail::blocks_for(n_tok * units, kThreads), n_jobs), kThreads, 0, stream>>>(k, v, n_tok,
                                                                                                    pos0_dev);
    detail::check_launch("kv_store");
}

}  // namespace

void kv_store(GgmlType type, const float* src, int64_t ld_src, int n_tok, int64_t n, void* cache, size_t row_bytes,
              const int32_t* pos0_dev, cudaStream_t stream) {
    const StoreJob job = make_job(type, src, ld_src, n, cache, row_bytes);
    if (n_tok <= 0 || n <= 0) return;
    launch(job, job, 1, n_tok, pos0_dev, stream);
}

void kv_store_kv(GgmlType type_k, const float* k, int64_t ld_k, int64_t n_k, void* k_cache, size_t k_row_bytes,
                 GgmlType type_v, const float* v, int64_t ld_v, int64_t n_v, void* v_cache, size_t v_row_bytes,
                 int n_tok, const int32_t* pos0_dev, cudaStream_t stream) {
    const StoreJob jk = make_job(type_k, k, ld_k, n_k, k_cache, k_row_bytes);
    const StoreJob jv = make_job(type_v, v, ld_v, n_v, v_cache, v_row_bytes);
    if (n_tok <= 0 || n_k <= 0 || n_v <= 0) return;
    launch(jk, jv, 2, n_tok, pos0_dev, stream);
}

}  // namespace runtime::cuda
