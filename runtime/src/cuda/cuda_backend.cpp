#include "cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <stdexcept>

#include "cuda/backend_kernels.h"
#include "cuda/matmul_kernels.h"
#include "cuda/op_kernels.h"
#include "cuda/prefill_choice.h"
#include "runtime/error.h"
#include "runtime/kv_cache.h"

namespace runtime::cuda {

using gguf::GgmlType;

namespace {

// Rows up to which matmuls take the int8 mat-vec kernels (each reads the weights once for all its
// rows); above, weights are dequantized to f16 and multiplied by cuBLAS.
constexpr int kVecRows = 8;
// Batches: from prefill_choice().dense_rows rows on, a dense quantized matmul dequantizes its weight to
// f16 for cuBLAS instead of running the int8 tensor-core tiles (mmq_ids with one expert): one
// dequantization pass plus cuBLAS's f16 GEMM beats the int8 tiles from a few dozen rows on
// (cuda-matmul-bench's "dense" rows).
// Elements of the f16 scratch a weight is dequantized into, a slice of rows at a time.
constexpr int64_t kW16Elems = int64_t{32} << 20;

void check_cublas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        throw Error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(status)));
    }
}

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

// With prefill_choice().dense_experts (opt-in, not yet run on a GPU): batches whose slots fall on at most
// this many experts, prefill_choice().dense_rows or more per expert on average, multiply those experts as
// dense matrices (dequantized f16 + cuBLAS, one call per expert and
// matrix) instead of the grouped int8 kernel. The cap bounds the launches per layer; the synthetic
// Qwen3-30B-A3B of docs/benchmarks.md routes each layer's 512 tokens to the same 8 experts.
constexpr int kDenseExpertsMax = 16;

// Bytes from one expert's matrix to the next in a stacked expert tensor.
size_t matrix_stride(const Weight& w) { return static_cast<size_t>(w.n_out) * w.row_bytes; }

// The grouped expert matmul: on the tensor cores in the tile shape prefill_choice() names (xq in the quad
// layout), else by dp4a (xq as q8_1 blocks). With y_rows, grouped slot g's row goes to row y_rows[g] of y:
// written there directly by the tensor-core kernel, else through `scratch` (rows in grouped order) and a
// scatter.
void grouped_matmul(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                    const void* xq, const int32_t* offsets, const int32_t* rows, int n_experts, int max_per_expert, float* y,
                    int64_t ldy, cudaStream_t stream, MmaTile tile, const int32_t* y_rows = nullptr,
                    float* scratch = nullptr, int n_slots = 0) {
    if (mmq_tensor_cores_available()) {
        mmq_ids_mma(type, W, row_bytes, mat_stride, n_in, n_out, xq, offsets, rows, n_experts, max_per_expert, y, ldy, stream,
                    tile, y_rows);
    } else if (y_rows == nullptr) {
        mmq_ids_dp4a(type, W, row_bytes, mat_stride, n_in, n_out, xq, offsets, rows, n_experts, max_per_expert, y, ldy,
                     stream);
    } else {
        mmq_ids_dp4a(type, W, row_bytes, mat_stride, n_in, n_out, xq, offsets, rows, n_experts, max_per_expert, scratch,
                     n_out, stream);
        scatter_rows(scratch, n_out, y_rows, n_slots, n_out, y, ldy, stream);
    }
}

// The same over a layer's stacked experts.
void grouped_matmul(const Weight& w, int64_t n_in, int64_t n_out, const void* xq, const int32_t* offsets,
                    const int32_t* rows, int n_experts, int max_per_expert, float* y, int64_t ldy, cudaStream_t stream,
                    MmaTile tile, const int32_t* y_rows = nullptr, float* scratch = nullptr, int n_slots = 0) {
    grouped_matmul(w.type, w.data, w.row_bytes, matrix_stride(w), n_in, n_out, xq, offsets, rows, n_experts, max_per_expert,
                   y, ldy, stream, tile, y_rows, scratch, n_slots);
}

}  // namespace

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(status));
}

// ---- backend -------------------------------------------------------------------------------------

CudaBackend::CudaBackend(int ordinal) : ordinal_(ordinal) {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    check(cudaMallocHost(&staging_, kW16Elems), "cudaMallocHost");
}

CudaBackend::~CudaBackend() {
    cudaSetDevice(ordinal_);
    for (void* p : pinned_) cudaHostUnregister(p);
    for (void* p : allocations_) cudaFree(p);
    cudaFreeHost(staging_);
}

void CudaBackend::reserve_placements(uint64_t bytes) {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<uint64_t>(bytes, 1)), "cudaMalloc (weights)");
    allocations_.push_back(p);
    reserved_ = static_cast<uint8_t*>(p);
    reserved_left_ = bytes;
}

const uint8_t* CudaBackend::place_weights(std::span<const uint8_t> bytes) {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    void* p = nullptr;
    const uint64_t rounded = device_aligned(bytes.size());
    if (rounded > 0 && rounded <= reserved_left_) {
        p = reserved_;
        reserved_ += rounded;
        reserved_left_ -= rounded;
    } else {
        check(cudaMalloc(&p, std::max<size_t>(bytes.size(), 1)), "cudaMalloc (weights)");
        allocations_.push_back(p);
    }
    // through pinned memory: copies from the mapped (pageable) file run at a fraction of the bus speed
    const size_t chunk = static_cast<size_t>(kW16Elems);
    for (size_t off = 0; off < bytes.size(); off += chunk) {
        const size_t n = std::min(chunk, bytes.size() - off);
        std::memcpy(staging_, bytes.data() + off, n);
        check(cudaMemcpy(static_cast<uint8_t*>(p) + off, staging_, n, cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
    }
    return static_cast<const uint8_t*>(p);
}

const float* CudaBackend::place_vector(std::span<const float> values) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(values.data()), values.size_bytes());
    return reinterpret_cast<const float*>(place_weights(bytes));
}

bool CudaBackend::pin_host(std::span<const uint8_t> bytes) {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    // the file is mapped read-only; portable: any context of the process may copy from it
    void* p = const_cast<uint8_t*>(bytes.data());
    if (cudaHostRegister(p, bytes.size(), cudaHostRegisterPortable | cudaHostRegisterReadOnly) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    pinned_.push_back(p);
    return true;
}

DeviceBuffer CudaBackend::allocate(size_t bytes) const {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc (KV cache)");
    check(cudaMemset(p, 0, bytes), "cudaMemset");
    return DeviceBuffer(p, [](void* q) { cudaFree(q); });
}

std::unique_ptr<Executor> CudaBackend::make_executor(const HParams& hp, const ContextShape& shape,
                                                     std::vector<double> rope_inv_freq) const {
    return std::make_unique<CudaExecutor>(ordinal_, hp, shape, rope_inv_freq);
}

// ---- executor ------------------------------------------------------------------------------------

void* CudaExecutor::alloc(size_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc (scratch)");
    allocations_.push_back(p);
    bytes_ += bytes;
    return p;
}

CudaExecutor::CudaExecutor(int ordinal, const HParams& hp, const ContextShape& shape,
                           const std::vector<double>& rope_inv_freq)
    : ordinal_(ordinal), hp_(hp), n_batch_(shape.n_batch), n_outputs_(shape.n_outputs > 0 ? shape.n_outputs : shape.n_batch),
      n_ctx_(shape.n_ctx), n_vocab_(shape.n_vocab),
      fuse_(fusion_choice().on) {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");

    // the scratch in one allocation (the device allocator rounds each to its page): sizes first, then pointers
    std::vector<std::pair<std::function<void(void*)>, size_t>> parts;
    auto part = [&parts]<class T>(T*& member, size_t bytes) {
        parts.emplace_back([&member](void* p) { member = static_cast<T*>(p); }, bytes);
    };
    const size_t B = static_cast<size_t>(n_batch_);
    for (int i = 0; i < static_cast<int>(Buf::Count); ++i) {
        buf_cols_.push_back(buffer_width(hp, static_cast<Buf>(i), shape.n_vocab));
    }
    bufs_.assign(static_cast<size_t>(Buf::Count), nullptr);
    int64_t widest = hp.n_embd;
    for (size_t i = 0; i < bufs_.size(); ++i) {
        if (static_cast<Buf>(i) == Buf::Logits) continue;  // allocated on first use, from the vocabulary
        part(bufs_[i], B * static_cast<size_t>(buf_cols_[i]) * sizeof(float));
        widest = std::max(widest, buf_cols_[i]);
    }
    const size_t K = std::max<uint32_t>(hp.n_expert_used, 1);
    if (hp.is_moe()) {
        part(ids_, B * K * sizeof(int32_t));
        part(weights_, B * K * sizeof(float));
        part(h_gate_, B * K * hp.n_ff_exp * sizeof(float));
        // h_up_ also holds the grouped down-projection rows
        part(h_up_, B * K * std::max(hp.n_ff_exp, hp.n_embd) * sizeof(float));
        part(down_, B * K * hp.n_embd * sizeof(float));
        // expert offsets (n_expert + 1), then per grouped slot: activation row and source slot
        part(group_dev_, (hp.n_expert + 1 + 2 * B * K) * sizeof(int32_t));
        check(cudaMallocHost(&group_host_, 3 * B * K * sizeof(int32_t)), "cudaMallocHost");
        check(cudaMallocHost(&ids_host_, B * K * sizeof(int32_t)), "cudaMallocHost");
        widest = std::max<int64_t>(widest, hp.n_ff_exp);
        // the fused router's counter (router_topk_f32), zero between launches
        part(router_counter_, sizeof(int32_t));
    }
    // 0..B*K-1 (rows in their own order) and, for every n <= n_batch, the offsets {0, n} of one group
    std::vector<int32_t> identity(B * K), dense(2 * (B + 1), 0);
    for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int32_t>(i);
    for (size_t n = 0; n <= B; ++n) dense[2 * n + 1] = static_cast<int32_t>(n);
    part(group_identity_, identity.size() * sizeof(int32_t));
    part(dense_offsets_, dense.size() * sizeof(int32_t));
    part(q8_, B * K * q8_1_row_bytes((widest + 511) / 512 * 512));
    x16_elems_ = B * K * static_cast<size_t>(widest);
    part(pos0_dev_, sizeof(int32_t));
    part(inv_freq_, std::max<size_t>(rope_inv_freq.size(), 1) * sizeof(double));
    part(attn_scratch_, attention_scratch_bytes(n_batch_, static_cast<int>(hp.n_head), static_cast<int>(hp.head_dim_v), n_ctx_));
    size_t total = 0;
    for (const auto& [set, bytes] : parts) total += device_aligned(bytes);
    auto* at = static_cast<uint8_t*>(alloc(total));
    for (const auto& [set, bytes] : parts) {
        set(at);
        at += device_aligned(bytes);
    }
    if (router_counter_) check(cudaMemset(router_counter_, 0, sizeof(int32_t)), "cudaMemset");
    check(cudaMemcpy(group_identity_, identity.data(), identity.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
          "cudaMemcpy");
    check(cudaMemcpy(dense_offsets_, dense.data(), dense.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "cudaMemcpy");
    check(cudaMallocHost(&pos0_host_, sizeof(int32_t)), "cudaMallocHost");
    check(cudaMemcpy(inv_freq_, rope_inv_freq.data(), rope_inv_freq.size() * sizeof(double), cudaMemcpyHostToDevice),
          "cudaMemcpy");
    // tables the IQ dequantizers read, copied before any decode step is recorded
    prepare_device_tables();
    if (hp.is_moe() && shape.streamed_expert_bytes > 0) allocate_expert_slot(shape.streamed_expert_bytes);
    // for tests and measurements: GGUF_STREAM_COPY=layers (always whole layers ahead) or used (always
    // the used experts as each layer comes); the default chooses by the batch's routing
    if (const char* env = std::getenv("GGUF_STREAM_COPY")) {
        const std::string v = env;
        stream_copy_ = v == "layers" ? StreamCopy::Layers : v == "used" ? StreamCopy::Used : StreamCopy::Auto;
    }
}

// One slot: a layer's copy overlaps the work between the previous streamed layer's experts and its own,
// not those experts too. The copies are bound by the bus (on an H200, about 7 ms for a layer of
// Qwen3-30B-A3B's experts against 0.5 ms of computing them), so a second slot gained little and cost
// a layer's experts of device memory, which --fit then leaves on the CPU, slowing every decode step.
// Without room for the slot the executor does not stream, and the CPU computes its experts as for
// small batches.
void CudaExecutor::allocate_expert_slot(uint64_t bytes) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    slot_.data = static_cast<uint8_t*>(p);
    bytes_ += bytes;
    check(cudaEventCreateWithFlags(&slot_.ready, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&slot_.done, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

CudaExecutor::~CudaExecutor() {
    cudaSetDevice(ordinal_);
    cudaStreamSynchronize(stream_);
    if (copy_stream_) cudaStreamSynchronize(copy_stream_);
    for (auto& [n, g] : graphs_) cudaGraphExecDestroy(g);
    if (cublas_) cublasDestroy(cublas_);
    if (slot_.data) cudaFree(slot_.data);
    if (slot_.ready) cudaEventDestroy(slot_.ready);
    if (slot_.done) cudaEventDestroy(slot_.done);
    if (copy_stream_) cudaStreamDestroy(copy_stream_);
    for (void* p : allocations_) cudaFree(p);
    cudaFreeHost(pos0_host_);
    for (float* p : host_bufs_) cudaFreeHost(p);
    cudaFreeHost(host_route_ids_);
    cudaFreeHost(host_route_weights_);
    cudaFreeHost(group_host_);
    cudaFreeHost(ids_host_);
    if (stream_) cudaStreamDestroy(stream_);
}

Tensor CudaExecutor::buffer(Buf id, int rows) {
    const size_t i = static_cast<size_t>(id);
    if (id == Buf::Logits && !bufs_[i]) {
        // the output layer's rows: allocated on first use, as only the executor of the output layer needs them
        bufs_[i] = static_cast<float*>(alloc(static_cast<size_t>(n_outputs_) * static_cast<size_t>(n_vocab_) * sizeof(float)));
    }
    return {bufs_[i], rows, buf_cols_[i], buf_cols_[i], device()};
}

Routing CudaExecutor::routing(int n_tokens, int k) { return {ids_, weights_, n_tokens, k, device()}; }

Tensor CudaExecutor::host_buffer(Buf id, int rows) {
    const size_t i = static_cast<size_t>(id);
    const int64_t cols = id == Buf::Logits ? n_vocab_ : buf_cols_[i];
    if (host_bufs_.empty()) host_bufs_.assign(static_cast<size_t>(Buf::Count), nullptr);
    if (!host_bufs_[i]) {
        void* p = nullptr;
        check(cudaMallocHost(&p, std::max<size_t>(static_cast<size_t>(n_batch_) * static_cast<size_t>(cols) * sizeof(float), 16)),
              "cudaMallocHost (staging)");
        host_bufs_[i] = static_cast<float*>(p);
    }
    return {host_bufs_[i], rows, cols, cols, Device::cpu()};
}

Routing CudaExecutor::host_routing(int n_tokens, int k) {
    if (!host_route_ids_) {
        const size_t slots = static_cast<size_t>(n_batch_) * std::max<uint32_t>(hp_.n_expert_used, 1);
        check(cudaMallocHost(&host_route_ids_, slots * sizeof(int32_t)), "cudaMallocHost (staging)");
        check(cudaMallocHost(&host_route_weights_, slots * sizeof(float)), "cudaMallocHost (staging)");
    }
    return {host_route_ids_, host_route_weights_, n_tokens, k, Device::cpu()};
}

void CudaExecutor::flush_pending() {
    if (pending_rope_.q.data) {
        const PendingRope p = pending_rope_;
        pending_rope_ = {};
        launch_norm_rope(p);
    }
    if (pending_router_w_) {
        const Weight* w = pending_router_w_;
        pending_router_w_ = nullptr;
        matmul_one(*w, 0, pending_router_x_, false, pending_router_y_.data, pending_router_y_.ld);
    }
    if (!pending_x_.data) return;
    const Tensor x = pending_x_, y = pending_y_;
    pending_x_ = {};
    add_rows(x.data, x.ld, y.data, y.ld, x.cols, static_cast<int>(x.rows), stream_);
}

bool CudaExecutor::q8_holds(const Tensor& x) const {
    return x.data && x.data == q8_rows_.data && x.rows == q8_rows_.rows && x.cols == q8_rows_.cols && x.ld == q8_rows_.ld;
}

void CudaExecutor::wrote(const Tensor& t) {
    if (t.data == q8_rows_.data) q8_rows_ = {};
}

void CudaExecutor::begin(const BatchInfo& batch) {
    check(cudaSetDevice(ordinal_), "cudaSetDevice");
    flush_pending();
    q8_rows_ = {};
    pos0_ = batch.pos0;
    // the host copy must not change before the stream has read it
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    *pos0_host_ = batch.pos0;
    sparse_batch_ = stream_copy_ == StreamCopy::Used;
    check(cudaMemcpyAsync(pos0_dev_, pos0_host_, sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
}

void CudaExecutor::upload(const Tensor& host, const Tensor& dst) {
    flush_pending();
    wrote(dst);
    check(cudaMemcpy2DAsync(dst.data, dst.ld * sizeof(float), host.data, host.ld * sizeof(float),
                            host.cols * sizeof(float), host.rows, cudaMemcpyHostToDevice, stream_),
          "upload");
    // from pageable host memory the copy has been staged when the call returns, and the source may change;
    // from this executor's page-locked staging (host_buffer) it runs later: the staging stays as it is
    // until the next wait (the next layer's download waits before the host writes it again)
}

void CudaExecutor::queue_download(const Tensor& src, const Tensor& host) {
    check(cudaMemcpy2DAsync(host.data, host.ld * sizeof(float), src.data, src.ld * sizeof(float),
                            src.cols * sizeof(float), src.rows, cudaMemcpyDeviceToHost, stream_),
          "download");
}

void CudaExecutor::queue_copy(const Routing& src, const Routing& dst, cudaMemcpyKind kind) {
    const size_t n = static_cast<size_t>(src.n_tokens) * static_cast<size_t>(src.k);
    const bool down = kind == cudaMemcpyDeviceToHost;
    check(cudaMemcpyAsync(dst.ids, src.ids, n * sizeof(int32_t), kind, stream_), down ? "download ids" : "upload ids");
    check(cudaMemcpyAsync(dst.weights, src.weights, n * sizeof(float), kind, stream_),
          down ? "download weights" : "upload weights");
}

void CudaExecutor::download(const Tensor& src, const Tensor& host) {
    flush_pending();
    queue_download(src, host);
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaExecutor::upload(const Routing& host, const Routing& dst) {
    flush_pending();
    queue_copy(host, dst, cudaMemcpyHostToDevice);
}

void CudaExecutor::download(const Routing& src, const Routing& host) {
    flush_pending();
    queue_copy(src, host, cudaMemcpyDeviceToHost);
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaExecutor::download(const Tensor& src, const Tensor& host, const Routing& rsrc, const Routing& rhost) {
    flush_pending();
    queue_download(src, host);
    queue_copy(rsrc, rhost, cudaMemcpyDeviceToHost);
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaExecutor::sync() {
    flush_pending();
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaExecutor::rms_norm(const Tensor& x, const float* w, float eps, const Tensor& out) {
    // the normalised rows also quantized for the mat-vecs that usually follow (Q/K/V, router + experts, output)
    void* xq = fuse_ && x.cols % 32 == 0 && x.rows <= kVecRows ? q8_ : nullptr;  // q8_1 blocks: decode rows
    const bool fuse = pending_x_.data == x.data && pending_x_.rows == x.rows && pending_x_.ld == x.ld &&
                      pending_x_.cols == x.cols;
    if (fuse) {
        pending_x_ = {};
        wrote(x);
        add_rms_norm(x.data, x.ld, pending_y_.data, pending_y_.ld, w, out.data, out.ld, x.cols, static_cast<int>(x.rows),
                     eps, stream_, xq);
    } else {
        flush_pending();
        cuda::rms_norm(x.data, x.ld, w, out.data, out.ld, x.cols, static_cast<int>(x.rows), eps, stream_, xq);
    }
    q8_rows_ = xq ? out : Tensor{};
}

void CudaExecutor::rms_norm_heads(const Tensor& x, int head_dim, const float* w, float eps) {
    flush_pending();
    wrote(x);
    cuda::rms_norm_heads(x.data, x.ld, w, static_cast<int>(x.rows), static_cast<int>(x.cols / head_dim), head_dim, eps,
                         stream_);
}

cublasHandle_t CudaExecutor::blas() {
    if (!cublas_) {
        check_cublas(cublasCreate(&cublas_), "cublasCreate");
        check_cublas(cublasSetStream(cublas_, stream_), "cublasSetStream");
    }
    return cublas_;
}

uint16_t* CudaExecutor::x16() {
    if (!x16_) x16_ = static_cast<uint16_t*>(alloc(x16_elems_ * sizeof(uint16_t)));
    return x16_;
}

uint16_t* CudaExecutor::w16() {
    if (!w16_) w16_ = static_cast<uint16_t*>(alloc(static_cast<size_t>(kW16Elems) * sizeof(uint16_t)));
    return w16_;
}

void CudaExecutor::gemm_f16(const Weight& w, int64_t mat, const void* x16, int64_t ldx16, int n_rows, float* y,
                            int64_t ldy) {
    // y (n_rows x n_out, row-major) = x (n_rows x n_in) W^T: in cuBLAS's column-major terms
    // y^T = W x^T, W being n_in x n_out column-major, so op(A) = A^T.
    const float one = 1.0f, zero = 0.0f;
    const int64_t slice = std::max<int64_t>(1, kW16Elems / w.n_in);
    for (int64_t r0 = 0; r0 < w.n_out; r0 += slice) {
        const int64_t nr = std::min(slice, w.n_out - r0);
        const void* a = nullptr;
        if (w.type == GgmlType::F16) {
            a = w.row(mat, r0);
        } else {
            uint16_t* rows = w16();
            dequantize_rows_f16(w.type, w.row(mat, r0), w.row_bytes, w.n_in, nr, rows, stream_);
            a = rows;
        }
        check_cublas(cublasGemmEx(blas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(nr), n_rows,
                                  static_cast<int>(w.n_in), &one, a, CUDA_R_16F, static_cast<int>(w.n_in), x16,
                                  CUDA_R_16F, static_cast<int>(ldx16), &zero, y + r0, CUDA_R_32F, static_cast<int>(ldy),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx");
    }
}

void CudaExecutor::gemm_f32(const Weight& w, int64_t mat, const Tensor& x, float* y, int64_t ldy) {
    // float weights in f32 arithmetic (f16 would round bf16 weights and the activations)
    const float one = 1.0f, zero = 0.0f;
    const int64_t slice = std::max<int64_t>(1, kW16Elems / 2 / w.n_in);  // f32 elements fit half the f16 scratch
    float* w32 = reinterpret_cast<float*>(w16());
    for (int64_t r0 = 0; r0 < w.n_out; r0 += slice) {
        const int64_t nr = std::min(slice, w.n_out - r0);
        const float* a = reinterpret_cast<const float*>(w.row(mat, r0));
        if (w.type != GgmlType::F32) {
            widen_to_f32(reinterpret_cast<const uint16_t*>(w.row(mat, r0)), w.type == GgmlType::BF16, nr * w.n_in, w32,
                         stream_);
            a = w32;
        }
        check_cublas(cublasSgemm(blas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(nr), static_cast<int>(x.rows),
                                 static_cast<int>(w.n_in), &one, a, static_cast<int>(w.n_in), x.data,
                                 static_cast<int>(x.ld), &zero, y + r0, static_cast<int>(ldy)),
                     "cublasSgemm");
    }
}

bool CudaExecutor::quad_rows(int n) const { return n > kVecRows && mmq_tensor_cores_available(); }

void CudaExecutor::quantize_rows(const float* x, int64_t ld, int64_t n_cols, int n) {
    if (quad_rows(n)) quantize_rows_q8_1_quads(x, ld, n_cols, n, q8_, stream_);
    else quantize_rows_q8_1(x, ld, n_cols, n, q8_, stream_);
}

void CudaExecutor::matmul_one(const Weight& w, int64_t mat, const Tensor& x, bool x_quantized, float* y,
                              int64_t ldy) {
    const int n = static_cast<int>(x.rows);
    if (is_float(w.type)) {
        if (n <= kVecRows) {
            mmv_float(w.type, w.row(mat, 0), w.row_bytes, w.n_in, w.n_out, x.data, x.ld, n, y, ldy, stream_);
        } else {
            gemm_f32(w, mat, x, y, ldy);
        }
    } else if (mmvq_supported(w.type) && n < prefill_choice().dense_rows) {
        // activations quantized to q8_1 once, as the CPU quantizes them for its dot products
        if (!x_quantized) quantize_rows(x.data, x.ld, x.cols, n);
        if (n <= kVecRows) {
            mmvq(w.type, w.row(mat, 0), w.row_bytes, w.n_in, w.n_out, q8_, n, y, ldy, stream_);
        } else {
            // a dense matrix is a grouped matmul with one expert holding every row
            grouped_matmul(w.type, w.row(mat, 0), w.row_bytes, 0, w.n_in, w.n_out, q8_, dense_offsets_ + 2 * n,
                           group_identity_, 1, n, y, ldy, stream_, prefill_choice().tile);
        }
    } else {
        uint16_t* xh = x16();
        f32_to_f16_rows(x.data, x.ld, x.cols, n, xh, stream_);
        gemm_f16(w, mat, xh, x.cols, n, y, ldy);
    }
}

void CudaExecutor::matmul(std::span<const MatmulOut> outs, const Tensor& x) {
    flush_pending();
    if (fuse_ && outs.size() == 1 && outs[0].y.data == bufs_[static_cast<size_t>(Buf::RouterLogits)] &&
        outs[0].w->type == GgmlType::F32 && x.rows >= 1 && x.rows <= kVecRows && outs[0].w->n_in == x.cols &&
        outs[0].w->n_out <= 512) {
        // the router's logits: deferred to route(), which runs both in one launch (router_topk_f32)
        pending_router_w_ = outs[0].w;
        pending_router_x_ = x;
        pending_router_y_ = outs[0].y;
        wrote(outs[0].y);
        return;
    }
    // the activation rows are quantized once for all the weights that take them (or already were, by a norm)
    bool quantized = q8_holds(x);
    const int n = static_cast<int>(x.rows);
    std::vector<char> done(outs.size(), 0);
    for (size_t i = 0; i < outs.size(); ++i) {
        if (done[i]) continue;
        const Weight& w = *outs[i].w;
        // int8 rows for the mat-vecs and the int8 tiles; from dense_rows on, matmul_one takes f16 + cuBLAS
        const bool int8 = !is_float(w.type) && mmvq_supported(w.type) && n < prefill_choice().dense_rows;
        if (int8 && !quantized) {
            quantize_rows(x.data, x.ld, x.cols, n);
            quantized = true;
            q8_rows_ = x;
        }
        // every weight of w's type from i on (up to kMmvqMaxMats), marked done, for one launch
        MmvqMat mats[kMmvqMaxMats];
        const auto take_same_type = [&] {
            int n_mats = 0;
            for (size_t j = i; j < outs.size() && n_mats < kMmvqMaxMats; ++j) {
                const Weight& wj = *outs[j].w;
                if (done[j] || wj.type != w.type || wj.n_in != w.n_in) continue;
                mats[n_mats++] = {wj.row(0, 0), wj.row_bytes, wj.n_out, outs[j].y.data, outs[j].y.ld};
                done[j] = 1;
            }
            return n_mats;
        };
        if (int8 && quad_rows(n)) {
            // prompts on the tensor cores: Q, K and V (gate and up) in one grid
            const int n_mats = take_same_type();
            const MmaTile tile = prefill_choice().tile;
            mmq_mma_dense(w.type, mats, n_mats, w.n_in, q8_, dense_offsets_ + 2 * n, group_identity_, n, stream_, tile,
                          mma_dense_k_split(tile, mats, n_mats, w.n_in, n));
            continue;
        }
        if (fuse_ && int8 && n <= kVecRows) {
            // decode: Q, K and V in one launch where they share a type
            const int n_mats = take_same_type();
            mmvq_multi(w.type, mats, n_mats, w.n_in, q8_, n, stream_);
            continue;
        }
        matmul_one(w, 0, x, quantized, outs[i].y.data, outs[i].y.ld);
        done[i] = 1;
    }
    for (const MatmulOut& o : outs) wrote(o.y);
}

void CudaExecutor::add_bias(const Tensor& y, const float* b) {
    flush_pending();
    wrote(y);
    cuda::add_bias(y.data, y.ld, b, y.cols, static_cast<int>(y.rows), stream_);
}

void CudaExecutor::rope(const Tensor& x, int head_dim) {
    flush_pending();
    wrote(x);
    cuda::rope(x.data, x.ld, static_cast<int>(x.rows), static_cast<int>(x.cols / head_dim), head_dim,
               static_cast<int>(hp_.n_rot), hp_.rope_mode == RopeMode::Neox, pos0_dev_, inv_freq_, stream_);
}

void CudaExecutor::norm_rope_qk(const Tensor& q, const float* q_norm, const Tensor& k, const float* k_norm, int head_dim,
                                float eps) {
    flush_pending();
    wrote(q);
    wrote(k);
    // deferred: the store_kv of these keys that follows runs with it as one norm_rope_qk_store
    pending_rope_ = {q, k, q_norm, k_norm, head_dim, eps};
    if (!fuse_) flush_pending();
}

void CudaExecutor::launch_norm_rope(const PendingRope& p) {
    cuda::norm_rope_qk(p.q.data, p.q.ld, static_cast<int>(p.q.cols / p.head_dim), p.q_norm, p.k.data, p.k.ld,
                       static_cast<int>(p.k.cols / p.head_dim), p.k_norm, static_cast<int>(p.q.rows), p.head_dim, p.eps,
                       static_cast<int>(hp_.n_rot), hp_.rope_mode == RopeMode::Neox, pos0_dev_, inv_freq_, stream_);
}

void CudaExecutor::store_kv(KvCache& kv, int il, const Tensor& k, const Tensor& v) {
    const PendingRope p = pending_rope_;
    if (p.q.data && p.k.data == k.data && p.k.rows == k.rows && v.cols == k.cols && p.k.cols == k.cols) {
        pending_rope_ = {};
        norm_rope_qk_store(p.q.data, p.q.ld, static_cast<int>(p.q.cols / p.head_dim), p.q_norm, k.data, k.ld,
                           static_cast<int>(k.cols / p.head_dim), p.k_norm, v.data, v.ld, static_cast<int>(k.rows),
                           p.head_dim, p.eps, static_cast<int>(hp_.n_rot), hp_.rope_mode == RopeMode::Neox, pos0_dev_,
                           inv_freq_, kv.type_k(), kv.k_row(il, 0), kv.k_row_bytes(), kv.type_v(), kv.v_row(il, 0),
                           kv.v_row_bytes(), stream_);
        return;
    }
    flush_pending();
    kv_store_kv(kv.type_k(), k.data, k.ld, k.cols, kv.k_row(il, 0), kv.k_row_bytes(), kv.type_v(), v.data, v.ld, v.cols,
                kv.v_row(il, 0), kv.v_row_bytes(), static_cast<int>(k.rows), pos0_dev_, stream_);
}

void CudaExecutor::attention(const KvCache& kv, int il, const Tensor& q, const Tensor& out) {
    flush_pending();
    wrote(out);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hp_.head_dim_k));
    const bool f32_kernel = prefill_choice().f32_attention;
    const bool q8_out = fuse_ && q.rows <= kVecRows && (f32_kernel || q.rows <= kAttentionSplitMaxTokens);
    cuda::attention(q.data, q.ld, kv.k_row(il, 0), kv.type_k(), kv.k_row_bytes(), kv.v_row(il, 0), kv.type_v(),
                    kv.v_row_bytes(), static_cast<int>(q.rows), static_cast<int>(hp_.n_head),
                    static_cast<int>(hp_.n_head_kv), static_cast<int>(hp_.head_dim_k), static_cast<int>(hp_.head_dim_v),
                    scale, pos0_dev_, n_ctx_, out.data, out.ld, attn_scratch_, stream_,
                    // batches on the tensor cores (split f16 operands: f32 accuracy), decode in f32
                    f32_kernel ? AttentionKernel::F32 : AttentionKernel::Auto,
                    // fused: the output rows quantized for the output projection on the way out (the f32
                    // kernel only; Auto takes it for kAttentionSplitMaxTokens tokens or fewer)
                    q8_out ? q8_ : nullptr);
    if (q8_out) q8_rows_ = out;
}

void CudaExecutor::add(const Tensor& x, const Tensor& y) {
    // deferred: see flush_pending
    flush_pending();
    wrote(x);
    pending_x_ = x;
    pending_y_ = y;
    if (!fuse_) flush_pending();
}

void CudaExecutor::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
    flush_pending();
    wrote(out);
    if (gate.ld != gate.cols || up.ld != up.cols || out.ld != out.cols) {
        throw std::logic_error("CudaExecutor::swiglu: rows must be contiguous");
    }
    cuda::swiglu(gate.data, up.data, out.data, gate.rows * gate.cols, stream_);
}

void CudaExecutor::route(const Tensor& logits, const RouterParams& p, const Routing& out) {
    if (pending_router_w_ && logits.data == pending_router_y_.data && logits.rows == pending_router_x_.rows &&
        p.k <= 32) {
        const Weight& w = *pending_router_w_;
        pending_router_w_ = nullptr;
        router_topk_f32(reinterpret_cast<const float*>(w.data), w.n_in, pending_router_x_.data, pending_router_x_.ld,
                        static_cast<int>(logits.rows), static_cast<int>(logits.cols), p.k, false, p.normalize, p.scale,
                        logits.data, logits.ld, router_counter_, out.ids, out.weights, stream_);
        return;
    }
    flush_pending();
    route_topk(logits.data, logits.ld, static_cast<int>(logits.rows), static_cast<int>(logits.cols), p.k, false,
               p.normalize, p.scale, out.ids, out.weights, stream_);
}

// The slot's view pointed at where L's three expert tensors go in it.
void CudaExecutor::point_slot_at(const LayerWeights& L) {
    slot_.view.gate_exps = L.gate_exps;
    slot_.view.up_exps = L.up_exps;
    slot_.view.down_exps = L.down_exps;
    size_t off = 0;
    for (Weight* w : {&slot_.view.gate_exps, &slot_.view.up_exps, &slot_.view.down_exps}) {
        w->data = slot_.data + off;
        w->device = device();
        off += device_aligned(static_cast<size_t>(w->n_mat) * matrix_stride(*w));
    }
}

// Context stages a layer only after the streamed layer before it has been queued (experts() recorded
// `done` after its reads), so nothing overwrites the slot between L's copy and L's experts.
void CudaExecutor::stage_experts(const LayerWeights& L) {
    flush_pending();
    if (!copy_stream_) throw std::logic_error("CudaExecutor::stage_experts: no expert slot");
    // a batch that routes to few experts copies only those, as each layer comes (experts())
    if (sparse_batch_) return;
    // the layer that last read the slot must have run before its bytes are overwritten
    check(cudaStreamWaitEvent(copy_stream_, slot_.done, 0), "cudaStreamWaitEvent");
    point_slot_at(L);
    const Weight* from[] = {&L.gate_exps, &L.up_exps, &L.down_exps};
    const Weight* to[] = {&slot_.view.gate_exps, &slot_.view.up_exps, &slot_.view.down_exps};
    for (int i = 0; i < 3; ++i) {
        const size_t bytes = static_cast<size_t>(from[i]->n_mat) * matrix_stride(*from[i]);
        check(cudaMemcpyAsync(const_cast<uint8_t*>(to[i]->data), from[i]->data, bytes, cudaMemcpyHostToDevice,
                              copy_stream_),
              "copy experts");
    }
    check(cudaEventRecord(slot_.ready, copy_stream_), "cudaEventRecord");
    slot_.layer = &L;
}

// Only the experts the batch routes to, copied on the compute stream into the slot (each at its place,
// so the kernels index it as the whole tensor). The slot then holds no whole layer: a later batch
// routing L to other experts must not find L staged there.
const LayerWeights& CudaExecutor::copy_used(const LayerWeights& L, const std::vector<char>& used) {
    check(cudaStreamWaitEvent(stream_, slot_.ready, 0), "cudaStreamWaitEvent");  // a copy still landing there
    slot_.layer = nullptr;
    point_slot_at(L);
    const Weight* from[] = {&L.gate_exps, &L.up_exps, &L.down_exps};
    const Weight* to[] = {&slot_.view.gate_exps, &slot_.view.up_exps, &slot_.view.down_exps};
    const int E = static_cast<int>(used.size());
    for (int i = 0; i < 3; ++i) {
        const size_t stride = matrix_stride(*from[i]);
        for (int e0 = 0; e0 < E;) {
            if (!used[static_cast<size_t>(e0)]) {
                ++e0;
                continue;
            }
            int e1 = e0;
            while (e1 < E && used[static_cast<size_t>(e1)]) ++e1;
            check(cudaMemcpyAsync(const_cast<uint8_t*>(to[i]->data) + e0 * stride, from[i]->data + e0 * stride,
                                  static_cast<size_t>(e1 - e0) * stride, cudaMemcpyHostToDevice, stream_),
                  "copy used experts");
            e0 = e1;
        }
    }
    return slot_.view;
}

// L's experts in the slot, once their copy has landed (null where stage_experts did not copy them, or
// copied another layer since).
const LayerWeights* CudaExecutor::staged(const LayerWeights& L) {
    if (slot_.layer != &L) return nullptr;
    check(cudaStreamWaitEvent(stream_, slot_.ready, 0), "cudaStreamWaitEvent");
    return &slot_.view;
}

void CudaExecutor::experts(const LayerWeights& layer, const Tensor& x, const Routing& r, const Tensor& out) {
    flush_pending();
    if (layer.experts_device() == device()) {
        run_experts(layer, x, r, out);
        return;
    }
    // Streamed: which experts the batch uses (a few bytes, one wait) decides how the next layers come
    // in. When most are used, each whole layer copied ahead (stage_experts) overlaps the work before
    // it; when few are (short prompts, skewed routing), copying just those as each layer comes moves
    // far fewer bytes.
    const size_t slots = static_cast<size_t>(r.n_tokens) * static_cast<size_t>(r.k);
    check(cudaMemcpyAsync(ids_host_, r.ids, slots * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_), "download ids");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    std::vector<char>& used = used_experts_;
    used.assign(hp_.n_expert, 0);
    for (size_t i = 0; i < slots; ++i) used[static_cast<size_t>(ids_host_[i])] = 1;
    const int n_used = static_cast<int>(std::count(used.begin(), used.end(), 1));
    const LayerWeights* staged_view = staged(layer);
    const LayerWeights& L = staged_view ? *staged_view : copy_used(layer, used);
    run_experts(L, x, r, out);
    // the slot's next copy (stage_experts) waits for these reads, staged or copied here
    check(cudaEventRecord(slot_.done, stream_), "cudaEventRecord");
    if (stream_copy_ == StreamCopy::Auto) sparse_batch_ = n_used * 4 <= static_cast<int>(hp_.n_expert);
}

void CudaExecutor::run_experts(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) {
    const bool x_quantized = q8_holds(x);
    // the paths below quantize into q8_ (x, or the expert rows), and write out
    q8_rows_ = {};
    const int n = r.n_tokens, K = r.k;
    const int64_t n_ff = hp_.n_ff_exp, n_embd = hp_.n_embd;
    const bool int8 = mmvq_supported(L.gate_exps.type) && mmvq_supported(L.up_exps.type) &&
                      mmvq_supported(L.down_exps.type);
    const bool floats = is_float(L.gate_exps.type) && is_float(L.up_exps.type) && is_float(L.down_exps.type);
    if (n <= kVecRows && floats) {
        experts_float(L, x, r, out);
        return;
    }
    if (!int8) {
        experts_dequantized(L, x, r, out);
        return;
    }
    if (n > kVecRows) {
        experts_grouped(L, x, r, out);
        return;
    }
    // decode: each slot's expert read straight from the ids on the device, no host round trip; gate and
    // up in one launch, SwiGLU with the quantization of its rows, the down projection with the weighted sum
    if (!x_quantized) quantize_rows_q8_1(x.data, x.ld, x.cols, n, q8_, stream_);
    const Weight &gate = L.gate_exps, &up = L.up_exps, &down = L.down_exps;
    if (gate.type == up.type && gate.row_bytes == up.row_bytes && matrix_stride(gate) == matrix_stride(up)) {
        mmvq_ids_pair(gate.type, gate.data, up.data, gate.row_bytes, matrix_stride(gate), n_embd, n_ff, q8_, K, r.ids, n * K,
                      h_gate_, h_up_, n_ff, stream_);
    } else {
        mmvq_ids(gate.type, gate.data, gate.row_bytes, matrix_stride(gate), n_embd, n_ff, q8_, K, r.ids, n * K, h_gate_, n_ff,
                 stream_);
        mmvq_ids(up.type, up.data, up.row_bytes, matrix_stride(up), n_embd, n_ff, q8_, K, r.ids, n * K, h_up_, n_ff, stream_);
    }
    swiglu_quantize_rows_q8_1(h_gate_, h_up_, n_ff, static_cast<int64_t>(n) * K, q8_, stream_);
    if (K <= kMmvqWeightedMaxK) {
        mmvq_ids_weighted(down.type, down.data, down.row_bytes, matrix_stride(down), n_ff, n_embd, q8_, r.ids, r.weights, n,
                          K, out.data, out.ld, stream_);
    } else {
        mmvq_ids(down.type, down.data, down.row_bytes, matrix_stride(down), n_ff, n_embd, q8_, 1, r.ids, n * K, down_, n_embd,
                 stream_);
        weighted_sum(r, out);
    }
}

// out[t] = sum over token t's slots of the slot's weight times its down-projection row (in down_).
void CudaExecutor::weighted_sum(const Routing& r, const Tensor& out) {
    check(cudaMemsetAsync(out.data, 0, static_cast<size_t>(out.rows) * out.ld * sizeof(float), stream_), "memset");
    moe_weighted_sum(out.data, out.ld, down_, hp_.n_embd, r.weights, r.n_tokens, r.k, hp_.n_embd, stream_);
}

// Decode with float experts: f32 mat-vecs reading each slot's expert from the ids on the device.
void CudaExecutor::experts_float(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) {
    const int n = r.n_tokens, K = r.k;
    const int64_t n_ff = hp_.n_ff_exp, n_embd = hp_.n_embd;
    mmv_float_ids(L.gate_exps.type, L.gate_exps.data, L.gate_exps.row_bytes, matrix_stride(L.gate_exps), n_embd, n_ff, x.data,
                  x.ld, K, r.ids, n * K, h_gate_, n_ff, stream_);
    mmv_float_ids(L.up_exps.type, L.up_exps.data, L.up_exps.row_bytes, matrix_stride(L.up_exps), n_embd, n_ff, x.data, x.ld, K,
                  r.ids, n * K, h_up_, n_ff, stream_);
    cuda::swiglu(h_gate_, h_up_, h_gate_, static_cast<int64_t>(n) * K * n_ff, stream_);
    mmv_float_ids(L.down_exps.type, L.down_exps.data, L.down_exps.row_bytes, matrix_stride(L.down_exps), n_ff, n_embd, h_gate_,
                  n_ff, 1, r.ids, n * K, down_, n_embd, stream_);
    weighted_sum(r, out);
}

// Prefill: the slots grouped by expert on the device, then each active expert's rows multiplied at
// once by int8 tensor-core tiles that read its weights once per tile; no host round trip.
void CudaExecutor::experts_grouped(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) {
    const int n = r.n_tokens, K = r.k, S = n * K;
    const int E = static_cast<int>(hp_.n_expert);
    const int64_t n_ff = hp_.n_ff_exp, n_embd = hp_.n_embd;
    const size_t BK = static_cast<size_t>(n_batch_) * K;
    int32_t* offsets = group_dev_;
    int32_t* slot_rows = group_dev_ + E + 1;
    int32_t* slot_of_group = slot_rows + BK;
    const int32_t* identity = group_identity_;
    group_slots_by_expert(r.ids, n, K, E, offsets, slot_rows, slot_of_group, stream_);
    if (prefill_choice().dense_experts && S >= prefill_choice().dense_rows && E + 1 <= static_cast<int>(3 * BK)) {
        // A few experts holding many rows each are dense matrices in all but name: dequantized + cuBLAS as
        // dense matmuls are. Seeing the counts costs one synchronisation (prefill steps are never recorded).
        check(cudaMemcpyAsync(group_host_, offsets, (static_cast<size_t>(E) + 1) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                              stream_),
              "download expert offsets");
        check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
        int active = 0;
        for (int e = 0; e < E; ++e) active += group_host_[e + 1] > group_host_[e];
        if (active > 0 && active <= kDenseExpertsMax && S >= prefill_choice().dense_rows * active) {
            experts_f16(L, x, r, out, group_host_, slot_rows, slot_of_group);
            return;
        }
    }
    const MmaTile tile = prefill_choice().tile;
    quantize_rows(x.data, x.ld, x.cols, n);
    grouped_matmul(L.gate_exps, n_embd, n_ff, q8_, offsets, slot_rows, E, n, h_gate_, n_ff, stream_, tile);
    grouped_matmul(L.up_exps, n_embd, n_ff, q8_, offsets, slot_rows, E, n, h_up_, n_ff, stream_, tile);
    if (quad_rows(n)) swiglu_quantize_rows_q8_1_quads(h_gate_, h_up_, n_ff, S, q8_, stream_);
    else swiglu_quantize_rows_q8_1(h_gate_, h_up_, n_ff, S, q8_, stream_);
    // the down rows straight back into routing order
    grouped_matmul(L.down_exps, n_ff, n_embd, q8_, offsets, identity, E, n, down_, n_embd, stream_, prefill_choice().down_tile,
                   slot_of_group, h_up_, S);
    weighted_sum(r, out);
}

// Types without int8 kernels (IQ1-IQ3, TQ, float experts): the slots grouped on the host (one
// synchronisation per MoE layer), then each active expert's rows multiplied at once with its weights
// dequantized for cuBLAS.
void CudaExecutor::experts_dequantized(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) {
    host_sync_seen_ = true;  // the grouping reads the ids on the host: such steps cannot be recorded
    const int n = r.n_tokens, K = r.k, S = n * K;
    const int E = static_cast<int>(hp_.n_expert);
    check(cudaMemcpyAsync(ids_host_, r.ids, static_cast<size_t>(S) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
          "download ids");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    // group_host_: [0, S) the token row of each grouped slot, [S, 2S) the slot it came from
    std::vector<int32_t> count(static_cast<size_t>(E) + 1, 0);
    for (int s = 0; s < S; ++s) count[static_cast<size_t>(ids_host_[s]) + 1]++;
    for (int e = 0; e < E; ++e) count[static_cast<size_t>(e) + 1] += count[static_cast<size_t>(e)];
    std::vector<int32_t> fill(count.begin(), count.end() - 1);
    for (int s = 0; s < S; ++s) {
        const int32_t g = fill[static_cast<size_t>(ids_host_[s])]++;
        group_host_[g] = s / K;
        group_host_[S + g] = s;
    }
    check(cudaMemcpyAsync(group_dev_, group_host_, 2 * static_cast<size_t>(S) * sizeof(int32_t), cudaMemcpyHostToDevice,
                          stream_),
          "upload groups");
    experts_f16(L, x, r, out, count.data(), group_dev_, group_dev_ + S);
}

// Each active expert's grouped rows times its matrices dequantized to f16, by cuBLAS: offsets (host, n_expert
// + 1) delimit the experts' grouped slots, rows_dev gives each grouped slot's token row, slots_dev its
// routing slot. Used for the types without int8 kernels, and for batches that sit on a few experts.
void CudaExecutor::experts_f16(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out,
                               const int32_t* offsets, const int32_t* rows_dev, const int32_t* slots_dev) {
    const int E = static_cast<int>(hp_.n_expert);
    const int S = offsets[E];  // the grouped slots (every routing slot: route_topk's ids are all valid)
    const int64_t n_ff = hp_.n_ff_exp, n_embd = hp_.n_embd;
    // rows of x in grouped order, f16
    uint16_t* xh = x16();
    gather_rows_f16(x.data, x.ld, rows_dev, S, n_embd, xh, stream_);
    for (int e = 0; e < E; ++e) {
        const int g0 = offsets[e], c = offsets[e + 1] - g0;
        if (c == 0) continue;
        gemm_f16(L.gate_exps, e, xh + static_cast<size_t>(g0) * n_embd, n_embd, c,
                 h_gate_ + static_cast<size_t>(g0) * n_ff, n_ff);
        gemm_f16(L.up_exps, e, xh + static_cast<size_t>(g0) * n_embd, n_embd, c,
                 h_up_ + static_cast<size_t>(g0) * n_ff, n_ff);
    }
    cuda::swiglu(h_gate_, h_up_, h_gate_, static_cast<int64_t>(S) * n_ff, stream_);
    f32_to_f16_rows(h_gate_, n_ff, n_ff, S, xh, stream_);
    for (int e = 0; e < E; ++e) {
        const int g0 = offsets[e], c = offsets[e + 1] - g0;
        if (c == 0) continue;
        gemm_f16(L.down_exps, e, xh + static_cast<size_t>(g0) * n_ff, n_ff, c, h_up_ + static_cast<size_t>(g0) * n_embd,
                 n_embd);
    }
    // back to slot order, then each token's weighted sum
    scatter_rows(h_up_, n_embd, slots_dev, S, n_embd, down_, n_embd, stream_);
    weighted_sum(r, out);
}

bool CudaExecutor::recordable() {
    flush_pending();
    // asked after an eager run of the steps (Context::recorded): none of them may have waited on the host
    return !host_sync_seen_;
}

void CudaExecutor::capture_abort() {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream_, &status) == cudaSuccess && status == cudaStreamCaptureStatusActive) {
        cudaGraph_t graph = nullptr;
        cudaStreamEndCapture(stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
    }
    cudaGetLastError();  // the capture's invalidation error, if any
    pending_x_ = {};
    pending_router_w_ = nullptr;
    pending_rope_ = {};
    q8_rows_ = {};
}

bool CudaExecutor::replay(int key) {
    const auto it = graphs_.find(key);
    if (it == graphs_.end()) return false;
    flush_pending();
    q8_rows_ = {};
    check(cudaGraphLaunch(it->second, stream_), "cudaGraphLaunch");
    return true;
}

void CudaExecutor::capture_begin() {
    flush_pending();
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

void CudaExecutor::capture_end(int key) {
    flush_pending();  // the step's last add belongs to the recording
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(status, "cudaGraphInstantiate");
    graphs_[key] = exec;
    check(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch");
}

}  // namespace runtime::cuda
