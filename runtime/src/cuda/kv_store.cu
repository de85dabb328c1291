// Stores a batch's keys and/or values into the cache rows at *pos0_dev + t, converting to the cache type.
#include <algorithm>

#include "cuda/pdl.cuh"
#include "cuda/head_ops.cuh"
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

// grid.y picks the job (keys, values); one thread per unit of one token's row.
__global__ void store_kernel(StoreJob k, StoreJob v, int n_tok, const int32_t* pos0_dev) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const StoreJob& job = blockIdx.y == 0 ? k : v;
    const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (item >= n_tok * job.units) return;
    const int t = static_cast<int>(item / job.units);
    const int64_t u = item % job.units;
    detail::store_unit(job.type, job.src + t * job.ld_src, u, job.cache + static_cast<size_t>(*pos0_dev + t) * job.row_bytes);
}

// One warp per (token, head) of Q, then K, then V: Q and K heads normalised and rotated in place (as
// norm_rope_qk), K and V heads then stored into their cache rows (as kv_store_kv): the three steps of
// the attention block between the projections and attention in one launch.
constexpr int kHeadWarps = 4;

struct QkvStore {
    float *q, *k;
    const float* v;
    int64_t ldq, ldk, ldv;
    const float *q_norm, *k_norm;
    int n_head, n_head_kv, n_tok, head_dim, half;
    float eps;
    bool neox;
    const int32_t* pos0_dev;
    const double* inv_freq;
    StoreJob kc, vc;
    size_t k_head_bytes, v_head_bytes;  // one head in a cache row
    int k_head_units, v_head_units;     // store units per head
};

__global__ void __launch_bounds__(kHeadWarps * 32) norm_rope_store_kernel(QkvStore a) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int item = blockIdx.x * kHeadWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n_q = a.n_tok * a.n_head, n_k = a.n_tok * a.n_head_kv;
    if (item >= n_q + 2 * n_k) return;
    const int pos0 = *a.pos0_dev;
    if (item < n_q + n_k) {
        const bool is_q = item < n_q;
        const int it = is_q ? item : item - n_q;
        const int heads = is_q ? a.n_head : a.n_head_kv;
        const int t = it / heads, h = it % heads;
        float* hd = (is_q ? a.q + t * a.ldq : a.k + t * a.ldk) + static_cast<int64_t>(h) * a.head_dim;
        detail::norm_rope_head(hd, is_q ? a.q_norm : a.k_norm, a.head_dim, a.eps, a.half, a.neox,
                               static_cast<double>(pos0 + t), a.inv_freq, lane);
        if (is_q) return;
        __syncwarp();  // the store reads elements other lanes wrote
        uint8_t* row = a.kc.cache + static_cast<size_t>(pos0 + t) * a.kc.row_bytes + h * a.k_head_bytes;
        for (int u = lane; u < a.k_head_units; u += 32) detail::store_unit(a.kc.type, hd, u, row);
        return;
    }
    const int it = item - n_q - n_k;
    const int t = it / a.n_head_kv, h = it % a.n_head_kv;
    const float* hd = a.v + t * a.ldv + static_cast<int64_t>(h) * a.head_dim;
    uint8_t* row = a.vc.cache + static_cast<size_t>(pos0 + t) * a.vc.row_bytes + h * a.v_head_bytes;
    for (int u = lane; u < a.v_head_units; u += 32) detail::store_unit(a.vc.type, hd, u, row);
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
    pdl_launch(store_kernel, dim3(detail::blocks_for(n_tok * units, kThreads), n_jobs), kThreads, 0, stream)(k, v, n_tok,
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

void norm_rope_qk_store(float* q, int64_t ldq, int n_head, const float* q_norm, float* k, int64_t ldk, int n_head_kv,
                        const float* k_norm, const float* v, int64_t ldv, int n_tok, int head_dim, float eps, int n_rot,
                        bool neox, const int32_t* pos0_dev, const double* inv_freq, GgmlType type_k, void* k_cache,
                        size_t k_row_bytes, GgmlType type_v, void* v_cache, size_t v_row_bytes, cudaStream_t stream) {
    if (n_rot % 2 != 0 || n_rot > head_dim || n_rot < 0 || head_dim > 1024) {
        throw Error("norm_rope_qk_store: " + std::to_string(n_rot) + " rotated dimensions do not fit heads of " +
                    std::to_string(head_dim));
    }
    QkvStore a{};
    a.kc = make_job(type_k, k, ldk, head_dim, k_cache, k_row_bytes);  // per head: the units of one head
    a.vc = make_job(type_v, v, ldv, head_dim, v_cache, v_row_bytes);
    if (n_tok <= 0) return;
    a.q = q;
    a.k = k;
    a.v = v;
    a.ldq = ldq;
    a.ldk = ldk;
    a.ldv = ldv;
    a.q_norm = q_norm;
    a.k_norm = k_norm;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.n_tok = n_tok;
    a.head_dim = head_dim;
    a.half = n_rot / 2;
    a.eps = eps;
    a.neox = neox;
    a.pos0_dev = pos0_dev;
    a.inv_freq = inv_freq;
    a.k_head_bytes = gguf::row_size(type_k, static_cast<uint64_t>(head_dim));
    a.v_head_bytes = gguf::row_size(type_v, static_cast<uint64_t>(head_dim));
    a.k_head_units = static_cast<int>(a.kc.units);
    a.v_head_units = static_cast<int>(a.vc.units);
    const int64_t items = static_cast<int64_t>(n_tok) * (n_head + 2 * n_head_kv);
    pdl_launch(norm_rope_store_kernel, detail::blocks_for(items, kHeadWarps), kHeadWarps * 32, 0, stream)(a);
    detail::check_launch("norm_rope_qk_store");
}

}  // namespace runtime::cuda
