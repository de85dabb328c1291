// The CPU backend: weights read in place from the mapped file; an executor computes each operation
// with OpenMP across output rows, with all scratch preallocated so that decoding allocates nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "aligned.h"
#include "matmul.h"
#include "runtime/backend.h"

namespace runtime::cpu {

class CpuExecutor final : public Executor {
public:
    CpuExecutor(const HParams& hp, const ContextShape& shape, std::vector<double> rope_inv_freq);

    Device device() const override { return Device::cpu(); }
    uint64_t bytes() const override;
    Tensor buffer(Buf id, int rows) override;
    Routing routing(int n_tokens, int k) override;
    void begin(const BatchInfo& batch) override;

    void upload(const Tensor& host, const Tensor& dst) override { copy(host, dst); }
    void download(const Tensor& src, const Tensor& host) override { copy(src, host); }
    void upload(const Routing& host, const Routing& dst) override { copy(host, dst); }
    void download(const Routing& src, const Routing& host) override { copy(src, host); }

    void rms_norm(const Tensor& x, const float* w, float eps, const Tensor& out) override;
    void rms_norm_heads(const Tensor& x, int head_dim, const float* w, float eps) override;
    void matmul(std::span<const MatmulOut> outs, const Tensor& x) override;
    void add_bias(const Tensor& y, const float* b) override;
    void rope(const Tensor& x, int head_dim) override;
    void norm_rope_qk(const Tensor& q, const float* q_norm, const Tensor& k, const float* k_norm, int head_dim,
                      float eps) override;
    void store_kv(KvCache& kv, int il, const Tensor& k, const Tensor& v) override;
    void attention(const KvCache& kv, int il, const Tensor& q, const Tensor& out) override;
    void attention_masked(const KvCache& kv, int il, const Tensor& q, const Tensor& out,
                          const AttentionMask& mask) override;
    void add(const Tensor& x, const Tensor& y) override;
    void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override;
    void route(const Tensor& logits, const RouterParams& p, const Routing& out) override;
    void experts(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) override;
    void split_gated_q(const Tensor& qg, int head_dim, const Tensor& q, const Tensor& gate) override;
    void sigmoid_mul(const Tensor& x, const Tensor& gate) override;
    void delta_net(const LayerWeights& L, RecurrentState& rs, int il, const Tensor& xn, const Tensor& out) override;
    void sync() override {}
    bool set_collector(ActivationCollector* c) override { collector_ = c; return true; }

    // The scratch of the experts step (moe.cpp).
    struct MoeScratch {
        AlignedVector<float> h_gate, h_up, down;
        std::vector<int32_t> expert_count, expert_tokens, expert_slots;
        std::vector<int32_t> active;  // the experts with tokens in this batch, n_active of them
        int32_t n_active = 0;
        std::vector<int64_t> bounds;  // each thread's first gate/up row group, n_threads + 1
        Activations act_up;           // the input rows for up weights of another format than the gate's
        Activations act_h;            // the hidden rows for the down weights
        // Decode-size batches (moe.cpp, run_decode): per active expert, the gate/up shares still running,
        // whether its hidden rows are ready for the down weights, and its next down item. A cache line
        // each, so that threads polling one expert do not slow the others' counters.
        struct alignas(64) Progress {
            std::atomic<int32_t> pending{0}, ready{0}, next_down{0};
        };
        std::unique_ptr<Progress[]> progress;
    };

private:
    static void copy(const Tensor& src, const Tensor& dst);
    static void norm_heads_row(float* row, int64_t cols, int head_dim, const float* w, float eps);
    void rope_row(float* row, int64_t cols, int head_dim, int64_t t) const;  // token t of the batch
    static void copy(const Routing& src, const Routing& dst);

    const HParams hp_;
    const int n_threads_, n_batch_, n_ctx_;
    const std::vector<double> inv_freq_;
    BatchInfo batch_;
    std::vector<float> rope_cos_, rope_sin_;  // n_batch x n_rot/2 angles of this batch
    std::vector<AlignedVector<float>> bufs_;  // by Buf
    std::vector<int64_t> buf_cols_;
    std::vector<float> sel_weight_;
    std::vector<int32_t> sel_expert_;
    // attention: scores and a key row per thread; the cached keys (transposed) and values in f32,
    // n_ctx positions per KV head
    AlignedVector<float> scores_, krow_, kt_, vf_;
    size_t scores_ld_ = 0;  // n_ctx rounded up for attend()'s last chunk
    size_t kt_ld_ = 0;      // floats from one key dimension's row of positions to the next
    // the input rows of the current matmul, quantized for its weights' dot products
    Activations act_;
    MoeScratch moe_;
    // delta_net's scratch (delta_net.cpp): projections, the convolution window, the mixer's output
    struct DeltaScratch {
        AlignedVector<float> mixed, z, beta, alpha, window, core;
    } delta_;
    ActivationCollector* collector_ = nullptr;  // importance-matrix statistics, when asked for
};

class CpuBackend final : public Backend {
public:
    Device device() const override { return Device::cpu(); }
    const uint8_t* place_weights(std::span<const uint8_t> bytes) override { return bytes.data(); }
    const float* place_vector(std::span<const float> values) override { return values.data(); }
    DeviceBuffer allocate(size_t bytes) const override;
    std::unique_ptr<Executor> make_executor(const HParams& hp, const ContextShape& shape,
                                            std::vector<double> rope_inv_freq) const override;
    bool supports_gpt_oss() const override { return true; }
    bool supports_qwen35() const override { return true; }
};

// The experts step (moe.cpp): groups the slots by expert and runs each active expert once.
void run_experts(const HParams& hp, const LayerWeights& w, Activations& x, const Routing& r, const Tensor& out,
                 int n_threads, int n_batch, CpuExecutor::MoeScratch& s);
// One Gated DeltaNet step over a batch for one value head (delta_net.cpp): the convolved and activated
// q, k (key head) and v (value head) rows of each token, the decay g and step size beta per token;
// `state` (d_k x d_v) is continued and out gets d_v values per token. q and k are l2-normalised here
// and q scaled by 1/sqrt(d_k), as transformers' torch_recurrent_gated_delta_rule does.
void delta_rule_head(int n_tokens, const float* q, const float* k, const float* v, int64_t ld, const float* g,
                     const float* beta, int64_t ld_gb, int d_k, int d_v, float* state, float* out, int64_t ld_out);
// Softmax router with top-k (moe.cpp).
void route_topk(const Tensor& logits, const RouterParams& p, const Routing& out);

}  // namespace runtime::cpu
