// A compute backend. A Backend holds one device's weights; an Executor, made per context, holds that
// device's scratch and implements the operations the architectures are written in (forward.cpp): a
// block is one sequence of these calls whatever device runs it, and activations stay on the device
// whose executor produced them until the forward pass copies them to another one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/device.h"
#include "runtime/hparams.h"
#include "runtime/weights.h"

namespace runtime {

class ActivationCollector;
class KvCache;
class RecurrentState;

// The sizes a context is created with; executors size their scratch from it once.
struct ContextShape {
    int n_ctx = 0;    // KV-cache positions
    int n_batch = 0;  // most tokens one forward call processes
    int n_outputs = 0;  // most logits rows one forward call returns (<= n_batch)
    int n_threads = 1;
    int64_t n_vocab = 0;
    // Bytes of the largest layer's experts that live in host memory while the layer's router runs on
    // this executor's GPU (0: none): such an executor keeps one slot of that size to stream them in
    // for large batches (stage_experts).
    uint64_t streamed_expert_bytes = 0;
};

// One forward call's tokens: n_tokens consecutive positions from pos0.
struct BatchInfo {
    int n_tokens = 0;
    int pos0 = 0;
};

// Rows of f32 activations on one device: row r starts at data + r * ld. A view into an executor's
// buffers; it owns nothing.
struct Tensor {
    float* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t ld = 0;
    Device device;

    float* row(int64_t r) const { return data + r * ld; }
};

// A batch's expert choice: token t uses experts ids[t * k + j] with weights[t * k + j], j < k.
struct Routing {
    int32_t* ids = nullptr;
    float* weights = nullptr;
    int n_tokens = 0;
    int k = 0;
    Device device;
};

// How a router turns logits into the top-k experts and their weights.
struct RouterParams {
    int k = 0;
    bool normalize = true;  // renormalise the k weights to sum 1
    float scale = 0.0f;     // 0 and 1 mean unscaled
    // gpt-oss: the k largest logits are chosen first and their softmax is the weights (instead of
    // the top k of the softmax over all experts)
    bool softmax_topk = false;
};

// What attention sees beyond causality: a sliding window and attention sinks (gpt-oss).
struct AttentionMask {
    int window = 0;               // > 0: a token sees the last `window` positions, its own included
    const float* sinks = nullptr; // per query head, on the executor's device: a logit that joins the
                                  // softmax's denominator and contributes no value
    bool plain() const { return window == 0 && sinks == nullptr; }
};

// The executors' scratch rows, each with room for n_batch rows of its width.
// QGate: a gated attention's joint q-and-gate projection; AttnGate: its gate; Shared: the shared
// expert's output; SharedGate: its one gate logit per token.
enum class Buf { X, XN, Q, K, V, Attn, Proj, Gate, Up, RouterLogits, Logits, QGate, AttnGate, Shared, SharedGate, Count };
// The width of a buffer's rows for a model (Logits: the vocabulary).
int64_t buffer_width(const HParams& hp, Buf id, int64_t n_vocab);

// Device memory that frees itself.
class DeviceBuffer {
public:
    using Free = void (*)(void*);
    DeviceBuffer() = default;
    DeviceBuffer(void* p, Free free) : p_(p, free) {}
    uint8_t* get() const { return static_cast<uint8_t*>(p_.get()); }

private:
    std::unique_ptr<void, Free> p_{nullptr, nullptr};
};

class Executor {
public:
    virtual ~Executor() = default;
    virtual Device device() const = 0;
    // Scratch bytes on the device (for the memory plan).
    virtual uint64_t bytes() const = 0;

    virtual Tensor buffer(Buf id, int rows) = 0;
    virtual Routing routing(int n_tokens, int k) = 0;
    // Host memory this executor copies to and from fastest, for the rows and routing of a layer whose
    // experts run on the host: page-locked staging on a GPU (one per id, made on first use; a copy from
    // it runs asynchronously, so it must not change before the next wait), the executor's own buffers on
    // the CPU.
    virtual Tensor host_buffer(Buf id, int rows) { return buffer(id, rows); }
    virtual Routing host_routing(int n_tokens, int k) { return routing(n_tokens, k); }

    // Starts a forward call: the batch's positions (RoPE angles, what attention reads).
    virtual void begin(const BatchInfo& batch) = 0;

    // Copies rows between a host tensor and one of this executor's (same shape); the destination is
    // complete when the call returns if it is on the host.
    virtual void upload(const Tensor& host, const Tensor& dst) = 0;
    virtual void download(const Tensor& src, const Tensor& host) = 0;
    virtual void upload(const Routing& host, const Routing& dst) = 0;
    virtual void download(const Routing& src, const Routing& host) = 0;
    // Rows and routing to the host together (a layer's experts there): executors that queue copies wait once.
    virtual void download(const Tensor& src, const Tensor& host, const Routing& rsrc, const Routing& rhost) {
        download(src, host);
        download(rsrc, rhost);
    }

    // ---- the operations (all tensors on this executor's device) ----
    // out = x / rms(x) * w, per row (out may be x)
    virtual void rms_norm(const Tensor& x, const float* w, float eps, const Tensor& out) = 0;
    // In place, each head of head_dim values of each row normalised on its own (Q/K norm).
    virtual void rms_norm_heads(const Tensor& x, int head_dim, const float* w, float eps) = 0;
    // y = x W^T for one or several weights on the same input (Q, K, V; gate, up), each weight's
    // matrix 0; the executor may share the input's conversion between them.
    struct MatmulOut {
        const Weight* w;
        Tensor y;
    };
    virtual void matmul(std::span<const MatmulOut> outs, const Tensor& x) = 0;
    virtual void add_bias(const Tensor& y, const float* b) = 0;
    // In place, each head of head_dim values rotated by its token's position in this batch.
    virtual void rope(const Tensor& x, int head_dim) = 0;
    // The Q/K step of attention in place: per head, the norm (where q_norm / k_norm are given) then RoPE.
    // Executors that can do it in one pass override it.
    virtual void norm_rope_qk(const Tensor& q, const float* q_norm, const Tensor& k, const float* k_norm,
                              int head_dim, float eps) {
        if (q_norm) rms_norm_heads(q, head_dim, q_norm, eps);
        if (k_norm) rms_norm_heads(k, head_dim, k_norm, eps);
        rope(q, head_dim);
        rope(k, head_dim);
    }
    virtual void store_kv(KvCache& kv, int il, const Tensor& k, const Tensor& v) = 0;
    // Causal attention of this batch's queries over layer il's cache (positions up to each token's own).
    virtual void attention(const KvCache& kv, int il, const Tensor& q, const Tensor& out) = 0;
    // attention() with a sliding window and/or sinks. Backends without it refuse (the model check at
    // load keeps such layers off them, so this is a safety net).
    virtual void attention_masked(const KvCache& kv, int il, const Tensor& q, const Tensor& out,
                                  const AttentionMask& mask);

    virtual void add(const Tensor& x, const Tensor& y) = 0;  // x += y
    virtual void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
    virtual void route(const Tensor& logits, const RouterParams& p, const Routing& out) = 0;
    // The routed experts of one layer: out[t] = sum_j w_tj * down_e(silu(gate_e(x_t)) * up_e(x_t)); with
    // the layer's expert biases (gpt-oss) each projection adds its expert's bias row, and with
    // hp.swiglu_limit > 0 the activation is gpt-oss's clamped SwiGLU (see cpu/ops.h swiglu_oai).
    virtual void experts(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) = 0;

    // ---- qwen35moe (backends where supports_qwen35(); the others refuse) ----
    // q and gate from a gated attention's projection, per head [q (head_dim), gate (head_dim)].
    virtual void split_gated_q(const Tensor& qg, int head_dim, const Tensor& q, const Tensor& gate);
    // x *= sigmoid(gate), element by element, or per row where gate has one column.
    virtual void sigmoid_mul(const Tensor& x, const Tensor& gate);
    // A Gated DeltaNet layer on the normalised rows xn (this batch's positions, continuing the
    // sequence whose convolution and delta-rule state `rs` holds for layer il, which it updates):
    // out = its output projection, n_embd wide.
    virtual void delta_net(const LayerWeights& L, RecurrentState& rs, int il, const Tensor& xn, const Tensor& out);

    // Streaming, for batches large enough that copying a layer's host-resident experts over the bus
    // costs less than computing them on the CPU. Whether this executor keeps the slot it needs (the
    // CPU does not; a GPU that had no room for it neither):
    virtual bool streams_experts() const { return false; }
    // Queues the copy of L's expert matrices into the slot, on a copy queue that first waits until the
    // slot's previous layer has run, so that a layer's copy overlaps the work before it; experts() on L
    // then reads that copy. The caller stages one layer at a time: the next only after experts() on L.
    // Only where streams_experts().
    virtual void stage_experts(const LayerWeights& L) { (void)L; }

    // Waits until everything queued has finished (a no-op where ops run synchronously).
    virtual void sync() = 0;

    // Reports the inputs of every matrix product to `c` from now on (null: stop). Returns false where
    // the executor cannot (the collection then has to run on another backend).
    virtual bool set_collector(ActivationCollector* c) { return c == nullptr; }

    // Recording: where a backend can replay a recorded sequence of operations (CUDA graphs), the ops
    // issued between capture_begin and capture_end(key) are recorded instead of run, then replayed by
    // capture_end and by each later replay(key); replay() returns false where nothing was recorded under
    // that key (the context's: the batch size of a whole step, or the first layer of a run of layers).
    // Only ops on this executor may be issued in between, and their buffers and arguments must be the
    // same on every replay (positions come from begin()).
    virtual bool replay(int key) { return (void)key, false; }
    // Whether steps may be recorded: asked after they ran once eagerly, which shows whether any of them
    // waited on the host (a recording cannot).
    virtual bool recordable() { return false; }
    virtual void capture_begin() {}
    virtual void capture_end(int key) { (void)key; }
    // Ends a recording that an error interrupted, discarding it.
    virtual void capture_abort() {}
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;

    // Makes a tensor's bytes (a view of the mapped file) readable by this backend's kernels and returns
    // where they now are. The CPU backend reads the mapping in place.
    virtual const uint8_t* place_weights(std::span<const uint8_t> bytes) = 0;
    virtual const float* place_vector(std::span<const float> values) = 0;
    // Sets aside, in one allocation, room for the weights and vectors about to be placed: `bytes` is the
    // sum of their device_aligned sizes. Placements then take from it, not from an allocation each (a
    // device allocator rounds each to its page, 2 MiB on CUDA).
    virtual void reserve_placements(uint64_t bytes) { (void)bytes; }
    // Page-locks host memory this backend will copy from (the CPU's experts it streams in), so that the
    // copies run at the bus's speed and the pages stay resident; the memory must outlive the backend.
    // Best effort: false where the backend has no use for it or the system refused.
    virtual bool pin_host(std::span<const uint8_t> bytes) { return (void)bytes, false; }
    // Zeroed memory for a KV cache.
    virtual DeviceBuffer allocate(size_t bytes) const = 0;

    // `rope_inv_freq`: per rotated pair of a head, the angle per position (scaling and frequency factors
    // folded in).
    virtual std::unique_ptr<Executor> make_executor(const HParams& hp, const ContextShape& shape,
                                                    std::vector<double> rope_inv_freq) const = 0;
    // Whether its executors implement what gpt-oss adds: attention_masked (sliding window, sinks),
    // biased experts with the clamped SwiGLU, the top-k softmax router and YaRN's attention factor.
    virtual bool supports_gpt_oss() const { return false; }
    // Whether its executors implement qwen35moe's operations: delta_net (with the per-sequence
    // recurrent state), split_gated_q and sigmoid_mul.
    virtual bool supports_qwen35() const { return false; }
};

// The room a piece carved from one device allocation takes, so that the next piece starts 256-byte
// aligned: placed weights and vectors, KV cache layers, executor scratch, stacked experts in a slot.
inline uint64_t device_aligned(uint64_t bytes) { return (bytes + 255) / 256 * 256; }
// The bytes a stage_experts slot needs for a layer's experts.
uint64_t expert_slot_bytes(const LayerWeights& L);

// The backends this build has, CPU first; the GPU ones only when `gpus` asks for them.
std::vector<std::unique_ptr<Backend>> create_backends(const std::vector<Device>& gpus);
// The GPU devices this build can place weights on (none for a CPU-only build or a machine without one).
std::vector<Device> available_gpus();

}  // namespace runtime
