// An inference context on a model: the KV cache, an executor per device the plan uses, and the forward
// pass that runs each step of each block on the device its weights were placed on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "runtime/backend.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/placement.h"
#include "runtime/recurrent_state.h"

namespace runtime {

class Gemma4Forward;

struct ContextParams {
    int n_ctx = 0;       // 0: the model's training context, at most kDefaultMaxCtx
    int n_batch = 512;   // tokens per forward step when decoding a long input
    // Rows of logits one step returns at most (0: n_batch): 1 where only the last token's are read
    // (generation, benchmarks), which spares the GPU the n_batch x n_vocab rows of all_logits.
    int n_outputs = 0;
    int n_threads = 0;   // 0: OpenMP's default (all cores)
    gguf::GgmlType type_k = gguf::GgmlType::F16;
    gguf::GgmlType type_v = gguf::GgmlType::F16;

    static constexpr int kDefaultMaxCtx = 4096;
    // More threads than this is a typo, not a machine (ggml caps at 512 as well).
    static constexpr int kMaxThreads = 512;
};

class Context {
public:
    // Allocates everything decode() needs; bad sizes throw runtime::Error.
    Context(const Model& model, const ContextParams& params);
    ~Context();

    // Appends tokens at positions n_past()... and returns their logits: n_vocab values for the last token,
    // or, with all_logits, n_vocab for each token (at most n_outputs tokens then). The span stays valid until
    // the next call. A token id out of range or a full context throws runtime::Error, and so do logits
    // that are not all finite: the error names the block and tensor where NaN/Inf first appears, and
    // the tokens of the failed call are not kept.
    std::span<const float> decode(std::span<const int32_t> tokens, bool all_logits = false);

    int n_past() const { return n_past_; }
    int n_ctx() const { return n_ctx_; }
    int n_batch() const { return n_batch_; }
    int n_threads() const { return n_threads_; }
    int n_vocab() const { return model_.n_vocab(); }
    // Forgets positions n.. so that decoding continues at n (n = 0 starts a new sequence). A model with
    // linear-attention layers (qwen35moe) keeps only the state after its last token: it can start over
    // (0) or stay (n_past()), nothing in between (runtime::Error; see can_truncate).
    void truncate(int n);
    bool can_truncate(int n) const { return n == 0 || n == n_past_ || (rs_.empty() && n >= 0 && n <= n_past_); }
    // Every executor reports its matrix products' inputs to `c` (null: stop). Throws runtime::Error
    // when some weights are on a backend that cannot (imatrix collection runs on the CPU backend).
    void set_collector(ActivationCollector* c);

    const Model& model() const { return model_; }
    const KvCache& kv_cache() const { return kv_; }
    // gemma4: the final-norm hidden states (n_embd each) of the rows the last decode returned logits
    // for (what a gemma4-assistant draft reads); empty for other architectures.
    std::span<const float> hidden() const { return hidden_; }
    // Weights, KV cache (with the recurrent state) and scratch per device.
    MemoryBreakdown memory() const;
    // Things the caller should tell the user, e.g. a context larger than the model's training context.
    const std::vector<std::string>& warnings() const { return warnings_; }

private:
    void forward(const int32_t* tokens, int n, bool all_logits, float* logits);
    // Runs `tokens` again from position pos0 with per-block checks; the message names where NaN/Inf
    // first appears and the tensor that holds it.
    std::string locate_non_finite(std::span<const int32_t> tokens, int pos0, bool all_logits);
    // In that pass only: checks `t` (on `ex`'s device) after a stage; true when it is not all finite.
    bool probe_finite(Executor& ex, const Tensor& t, int stage, int layer);

    const Model& model_;
    int n_ctx_, n_batch_, n_outputs_, n_threads_;
    int n_past_ = 0;
    KvCache kv_;
    RecurrentState rs_;  // the linear-attention layers' state of this context's sequence
    Executor& executor(Device device);

    std::map<Device, std::unique_ptr<Executor>> executors_;
    std::vector<Executor*> attn_exec_, ffn_exec_, experts_exec_;
    Executor* out_exec_ = nullptr;
    Executor* graph_exec_ = nullptr;  // the one GPU executor of a context that runs wholly there
    bool graphs_enabled_ = true;      // GGUF_CUDA_GRAPHS=0 turns recording off
    std::vector<uint32_t> gpu_run_end_;  // see the constructor
    std::vector<bool> split_on_gpu_;     // see the constructor
    // recording keys: whole decode steps are n * 2 + want_logits, a run of GPU layers from il is -1 - il,
    // the GPU's part of a layer il with CPU experts kSplitLayerKey - il
    static constexpr int kSplitLayerKey = -(1 << 20);
    std::map<int, int> eager_runs_;      // eager runs per recording key (recorded())
    void recorded(Executor& ex, int key, const std::function<void()>& steps);
    // Layers whose experts are in host memory and whose router runs on a GPU that can stream them in
    // (stage_experts) for batches of at least stream_min_tokens_ tokens.
    std::vector<uint32_t> streamable_;
    int stream_min_tokens_ = 0;
    std::vector<float> embd_;    // the batch's token embeddings, n_batch x n_embd, on the host
    std::vector<float> logits_;  // n_batch x n_vocab
    // host staging for rows, expert ids and weights moving between two devices
    std::vector<float> stage_rows_, stage_weights_;
    std::vector<int32_t> stage_ids_;
    std::vector<std::string> warnings_;
    std::unique_ptr<Gemma4Forward> gemma4_;  // gemma4 runs its own forward pass (gemma4/gemma4.h)
    std::vector<float> hidden_;
    class FiniteProbe* probe_ = nullptr;  // set only while locating a non-finite value
    std::vector<float> probe_rows_;       // the residual stream copied to the host in that pass
};

}  // namespace runtime
