// The architectures, written once over the executors' operations: a block does the same steps
// whatever device runs it. Where the steps of one block run on two devices (a MoE layer whose router
// is on the GPU and whose experts are on the CPU), the block moves its activations between them.
#pragma once

#include <utility>

#include "runtime/backend.h"
#include "runtime/kv_cache.h"
#include "runtime/recurrent_state.h"

namespace runtime {

// Moves rows between two executors' devices (through host memory where neither is the CPU).
class Transfers {
public:
    explicit Transfers(std::vector<float>& host_rows, std::vector<int32_t>& host_ids, std::vector<float>& host_weights)
        : rows_(host_rows), ids_(host_ids), weights_(host_weights) {}

    // `src` (on `from`'s device) copied into `to`'s buffer `id`; returns the copy, or src when the
    // devices are the same.
    Tensor move(Executor& from, const Tensor& src, Executor& to, Buf id);
    Routing move(Executor& from, const Routing& src, Executor& to);
    // Both, as a layer's experts take them (to the host: into `from`'s page-locked staging, one wait for
    // the two).
    std::pair<Tensor, Routing> move(Executor& from, const Tensor& src, const Routing& r, Executor& to, Buf id);
    // Where `on` writes rows that then go to `back_to`: on the host, `back_to`'s page-locked staging.
    static Tensor output(Executor& on, Executor& back_to, Buf id, int rows);

private:
    std::vector<float>& rows_;
    std::vector<int32_t>& ids_;
    std::vector<float>& weights_;
};

// x += attention(x) for layer il, all on `ex`.
void attention_block(Executor& ex, const HParams& hp, const LayerWeights& L, KvCache& kv, int il, const Tensor& x);
// x += the token mixer of layer il: attention, or for qwen35moe gated attention / a Gated DeltaNet
// layer (forward_qwen35.cpp) continuing the sequence in `rs`.
void mixer_block(Executor& ex, const HParams& hp, const LayerWeights& L, KvCache& kv, RecurrentState& rs, int il,
                 const Tensor& x);
// qwen35moe's mixers (forward_qwen35.cpp).
void gated_attention_block(Executor& ex, const HParams& hp, const LayerWeights& L, KvCache& kv, int il, const Tensor& x);
void delta_net_block(Executor& ex, const HParams& hp, const LayerWeights& L, RecurrentState& rs, int il, const Tensor& x);
// out = sigmoid(gate_inp_shexp . xn) * down(silu(gate(xn)) * up(xn)): qwen35moe's shared expert, on `ex`.
void shared_expert(Executor& ex, const LayerWeights& L, const Tensor& xn, const Tensor& out);

// x += ffn(x): a dense SwiGLU FFN on `ffn`, or a MoE FFN with its norm and router on `ffn` and its routed
// experts on `experts`.
void ffn_block(Executor& ffn, Executor& experts, Transfers& transfers, const HParams& hp, const LayerWeights& L,
               const Tensor& x);

// A MoE FFN in two halves, for a decode step that records the GPU's part of a layer whose experts run on
// the CPU (the transfer between them waits on the host, which a recording cannot hold). The buffers come
// first, from `ffn` (the same ones on every call, so a replayed recording writes them too).
struct MoeRouted {
    Tensor xn, shared;  // the normalised rows; qwen35moe's shared expert's output (else empty)
    Routing r;
};
MoeRouted moe_buffers(Executor& ffn, const HParams& hp, const LayerWeights& L, int n);
// the norm, the shared expert and the router with its top-k, on `ffn`
void moe_route(Executor& ffn, const HParams& hp, const LayerWeights& L, const Tensor& x, const MoeRouted& m);
// the routed experts on `experts` (the rows and routing moved there), their weighted sum and the shared
// expert's output added to x
void moe_experts(Executor& ffn, Executor& experts, Transfers& transfers, const LayerWeights& L, const Tensor& x,
                 const MoeRouted& m);

}  // namespace runtime
