// The CUDA backend: weights, KV cache and scratch in device memory; each operation is a kernel (or a
// cuBLAS call) queued on the executor's stream, so a forward pass on the GPU runs without waiting on
// the host. A decode step that runs wholly on one GPU is captured once as a CUDA graph per batch size
// and replayed; everything that changes per token (the position) is read from device memory.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <vector>

#include "runtime/backend.h"

using cublasHandle_t = struct cublasContext*;

namespace runtime::cuda {

// Throws runtime::Error naming the call.
void check(cudaError_t status, const char* what);

class CudaExecutor final : public Executor {
public:
    CudaExecutor(int ordinal, const HParams& hp, const ContextShape& shape, const std::vector<double>& rope_inv_freq);
    ~CudaExecutor() override;

    Device device() const override { return Device::cuda(ordinal_); }
    uint64_t bytes() const override { return bytes_; }
    Tensor buffer(Buf id, int rows) override;
    Routing routing(int n_tokens, int k) override;
    Tensor host_buffer(Buf id, int rows) override;
    Routing host_routing(int n_tokens, int k) override;
    void begin(const BatchInfo& batch) override;

    void upload(const Tensor& host, const Tensor& dst) override;
    void download(const Tensor& src, const Tensor& host) override;
    void upload(const Routing& host, const Routing& dst) override;
    void download(const Routing& src, const Routing& host) override;
    void download(const Tensor& src, const Tensor& host, const Routing& rsrc, const Routing& rhost) override;

    void rms_norm(const Tensor& x, const float* w, float eps, const Tensor& out) override;
    void rms_norm_heads(const Tensor& x, int head_dim, const float* w, float eps) override;
    void matmul(std::span<const MatmulOut> outs, const Tensor& x) override;
    void add_bias(const Tensor& y, const float* b) override;
    void rope(const Tensor& x, int head_dim) override;
    void norm_rope_qk(const Tensor& q, const float* q_norm, const Tensor& k, const float* k_norm, int head_dim,
                      float eps) override;
    void store_kv(KvCache& kv, int il, const Tensor& k, const Tensor& v) override;
    void attention(const KvCache& kv, int il, const Tensor& q, const Tensor& out) override;
    void add(const Tensor& x, const Tensor& y) override;
    void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override;
    void route(const Tensor& logits, const RouterParams& p, const Routing& out) override;
    void experts(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) override;
    bool streams_experts() const override { return copy_stream_ != nullptr; }
    void stage_experts(const LayerWeights& L) override;
    void sync() override;

    bool recordable() override;
    void capture_abort() override;
    bool replay(int key) override;
    void capture_begin() override;
    void capture_end(int key) override;

private:
    void* alloc(size_t bytes);
    // Three ops are deferred until the next op, to run fused with it: the residual add (an rms_norm of the
    // same rows makes it one add_rms_norm launch), the router's matmul into Buf::RouterLogits (the route()
    // of those logits makes it one router_topk_f32 launch) and norm_rope_qk (the store_kv of those keys
    // makes it one norm_rope_qk_store launch). Every other op, copy, sync and capture step launches what is
    // pending first.
    void flush_pending();
    struct PendingRope {
        Tensor q, k;
        const float *q_norm = nullptr, *k_norm = nullptr;
        int head_dim = 0;
        float eps = 0.f;
    };
    void launch_norm_rope(const PendingRope& p);
    // q8_ holds the q8_1 rows of the tensor q8_rows_ describes (written by a norm or a quantization), so
    // a matmul of those rows skips its quantization; an op that writes the tensor forgets it.
    bool q8_holds(const Tensor& x) const;
    // Activation rows into q8_: q8_1 blocks for decode (n <= kVecRows) and devices without int8 mma, the
    // quad layout of the tensor-core kernel for larger batches on those with it.
    bool quad_rows(int n) const;
    // The copies of download(), queued on the stream without waiting.
    void queue_download(const Tensor& src, const Tensor& host);
    void queue_copy(const Routing& src, const Routing& dst, cudaMemcpyKind kind);  // ids and weights, either way
    void quantize_rows(const float* x, int64_t ld, int64_t n_cols, int n);
    void wrote(const Tensor& t);
    // One weight times rows of x: int8 mat-vec for a few rows, dequantize + cuBLAS for many.
    void matmul_one(const Weight& w, int64_t mat, const Tensor& x, bool x_quantized, float* y, int64_t ldy);
    // The cuBLAS handle and its f16 scratch (activation rows, dequantized weights), made at the first
    // batch that needs them (prompts with float weights; types without int8 kernels), so that runs that
    // never do (decode of the int8 types) hold none of it. Never inside a recording: Context records a
    // step only after an eager run of the same step, which made them. --fit counts all of it.
    cublasHandle_t blas();
    uint16_t* x16();
    uint16_t* w16();
    void gemm_f32(const Weight& w, int64_t mat, const Tensor& x, float* y, int64_t ldy);
    void gemm_f16(const Weight& w, int64_t mat, const void* x16, int64_t ldx16, int n_rows, float* y, int64_t ldy);
    void run_experts(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out);
    void experts_grouped(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out);
    void weighted_sum(const Routing& r, const Tensor& out);
    void experts_float(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out);
    void experts_dequantized(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out);
    void experts_f16(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out, const int32_t* offsets,
                     const int32_t* rows_dev, const int32_t* slots_dev);

    const int ordinal_;
    const HParams hp_;
    const int n_batch_, n_outputs_, n_ctx_;
    const int64_t n_vocab_;
    const bool fuse_;         // the decode fusions below (GGUF_CUDA_FUSE=0 off: every op is its own launch(es))
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    std::vector<void*> allocations_;
    uint64_t bytes_ = 0;

    std::vector<float*> bufs_;  // by Buf
    std::vector<int64_t> buf_cols_;
    int32_t* ids_ = nullptr;
    float* weights_ = nullptr;
    float *h_gate_ = nullptr, *h_up_ = nullptr, *down_ = nullptr;  // per expert slot
    void* q8_ = nullptr;          // activation rows quantized to q8_1
    uint16_t* x16_ = nullptr;     // activation rows in f16 for cuBLAS (x16(): x16_elems_ of them)
    size_t x16_elems_ = 0;
    uint16_t* w16_ = nullptr;     // dequantized weight rows for cuBLAS (w16(): kW16Elems of them)
    int32_t* pos0_dev_ = nullptr;
    int32_t* pos0_host_ = nullptr;  // pinned
    double* inv_freq_ = nullptr;
    void* attn_scratch_ = nullptr;
    // the grouped experts paths: expert offsets and per-slot lists
    int32_t* group_dev_ = nullptr;
    int32_t* group_identity_ = nullptr;  // 0, 1, 2, ...
    int32_t* dense_offsets_ = nullptr;   // {0, n} at 2n: one group of n rows
    int32_t* group_host_ = nullptr;  // pinned
    int32_t* ids_host_ = nullptr;    // pinned
    std::vector<float*> host_bufs_;  // page-locked staging by Buf (host_buffer), made on first use
    int32_t* host_route_ids_ = nullptr;  // page-locked routing staging (host_routing)
    float* host_route_weights_ = nullptr;
    int pos0_ = 0;
    Tensor pending_x_, pending_y_;  // the deferred x += y (pending_x_.data null: none)
    const Weight* pending_router_w_ = nullptr;  // the deferred router matmul (null: none)
    Tensor pending_router_x_, pending_router_y_;
    int32_t* router_counter_ = nullptr;  // router_topk_f32's counter, zero between launches
    PendingRope pending_rope_;            // the deferred norm_rope_qk (q.data null: none)
    Tensor q8_rows_;                // what q8_ holds (data null: nothing known)

    // Streamed experts: a layer's host-resident expert matrices copied into the one slot, on copy_stream_
    // (a whole layer, stage_experts) or on the compute stream (the used experts, copy_used); `view` is
    // the layer's experts as they lie in the slot.
    struct ExpertSlot {
        uint8_t* data = nullptr;
        const LayerWeights* layer = nullptr;  // the layer whose experts are all there (null: none, or some)
        LayerWeights view;
        cudaEvent_t ready = nullptr;  // the last copy on copy_stream_ has landed
        cudaEvent_t done = nullptr;   // the experts that last read it have run
    };
    void allocate_expert_slot(uint64_t bytes);
    void point_slot_at(const LayerWeights& L);
    const LayerWeights* staged(const LayerWeights& L);
    const LayerWeights& copy_used(const LayerWeights& L, const std::vector<char>& used);
    ExpertSlot slot_;
    cudaStream_t copy_stream_ = nullptr;
    bool sparse_batch_ = false;  // this batch's last streamed layer used at most a quarter of the experts
    enum class StreamCopy { Auto, Layers, Used } stream_copy_ = StreamCopy::Auto;
    std::vector<char> used_experts_;

    std::map<int, cudaGraphExec_t> graphs_;  // by the context's key (Executor::replay)
    bool host_sync_seen_ = false;
};

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int ordinal);
    ~CudaBackend() override;

    Device device() const override { return Device::cuda(ordinal_); }
    const uint8_t* place_weights(std::span<const uint8_t> bytes) override;
    const float* place_vector(std::span<const float> values) override;
    void reserve_placements(uint64_t bytes) override;
    bool pin_host(std::span<const uint8_t> bytes) override;
    DeviceBuffer allocate(size_t bytes) const override;
    std::unique_ptr<Executor> make_executor(const HParams& hp, const ContextShape& shape,
                                            std::vector<double> rope_inv_freq) const override;

private:
    const int ordinal_;
    std::vector<void*> allocations_;
    uint8_t* reserved_ = nullptr;  // reserve_placements's room: placements take from its front
    uint64_t reserved_left_ = 0;
    void* staging_ = nullptr;  // pinned, for uploads from the mapped file
    std::vector<void*> pinned_;  // host ranges registered by pin_host
};

}  // namespace runtime::cuda
