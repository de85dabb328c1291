// The weight tensors of a model, bound by llama.cpp's names and checked against the hyper-parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "runtime/device.h"

namespace runtime {

// A matrix (or a stack of n_mat matrices, one per expert) kept in its file type: n_out rows of n_in.
struct Weight {
    std::string name;
    gguf::GgmlType type = gguf::GgmlType::F32;
    int64_t n_in = 0;
    int64_t n_out = 0;
    int64_t n_mat = 1;
    size_t row_bytes = 0;
    const uint8_t* data = nullptr;  // where the owning device's kernels read it
    Device device;

    bool present() const { return data != nullptr; }
    const uint8_t* row(int64_t mat, int64_t r) const {
        return data + (static_cast<size_t>(mat) * static_cast<size_t>(n_out) + static_cast<size_t>(r)) * row_bytes;
    }
};

// A small vector (norm weight, bias), converted to f32 at load since it is read on every token, and
// placed on the device of the block that reads it.
struct Vector {
    std::string name;
    std::vector<float> values;
    const float* placed = nullptr;  // where that device's kernels read it
    Device device;

    bool empty() const { return values.empty(); }
    const float* data() const { return placed; }
};

// A Gated DeltaNet (linear attention) mixer, qwen35moe's recurrent layers, as llama.cpp's converter
// lays it out: value heads in tiled order (value head h reads key head h % n_k_heads).
struct DeltaNetWeights {
    Weight qkv;     // attn_qkv: the q, k (key heads) and v (value heads) channels the convolution mixes
    Weight gate;    // attn_gate: z, the gated norm's gate, per value channel
    Weight beta;    // ssm_beta: one logit per value head (sigmoid: the delta rule's step size)
    Weight alpha;   // ssm_alpha: one per value head, into the decay with dt and a
    Weight out;     // ssm_out
    Vector conv;    // ssm_conv1d: conv_dim channels of d_conv taps, oldest first
    Vector dt_bias; // ssm_dt.bias, per value head
    Vector a;       // ssm_a = -exp(A_log), per value head
    Vector norm;    // ssm_norm: the gated RMSNorm's weight, one value head wide
    bool present() const { return qkv.present(); }
};

struct LayerWeights {
    Vector attn_norm, ffn_norm;
    Vector q_norm, k_norm;          // qwen3 / qwen3moe
    Vector bq, bk, bv, bo;          // qwen2 (q, k, v); gpt-oss (all four); optional elsewhere
    Vector attn_sinks;              // gpt-oss: one logit per query head that joins each softmax
    Weight wq, wk, wv, wo;
    Weight ffn_gate, ffn_up, ffn_down;          // dense FFN
    Weight gate_inp, gate_exps, up_exps, down_exps;  // MoE: router and stacked experts
    // gpt-oss: router bias (n_expert) and per-expert biases (n_expert rows of the output width)
    Vector gate_inp_b, gate_exps_b, up_exps_b, down_exps_b;
    // gemma4: norms after attention and after the FFN, the experts' own pre/post norms beside the dense
    // MLP's post norm, the router's input scale, the per-expert output scale, the layer's output
    // scalar, and the experts' gate and up projections fused in one stack (gate rows first)
    Vector attn_post_norm, ffn_post_norm, ffn_pre_norm_2, ffn_post_norm_1, ffn_post_norm_2;
    Vector gate_inp_s, down_exps_s, out_scale;
    Weight gate_up_exps;
    // qwen35moe: the shared expert and its sigmoid gate (one logit per token), and the linear attention
    Weight gate_shexp, up_shexp, down_shexp, gate_inp_shexp;
    DeltaNetWeights delta;

    bool is_moe() const { return gate_inp.present(); }
    // Each step runs where its weights are: attention where wq is (a linear-attention layer's where its
    // input projection is), a dense FFN where its up projection
    // is, a MoE FFN's norm and router where the router is and its experts where they are.
    Device attention_device() const { return wq.present() || !delta.present() ? wq.device : delta.qkv.device; }
    Device ffn_device() const { return is_moe() ? gate_inp.device : ffn_up.device; }
    Device experts_device() const { return up_exps.device; }
    // Experts in host memory while the router runs on a GPU: large batches stream them to that GPU.
    bool experts_streamable() const { return is_moe() && experts_device().is_cpu() && !ffn_device().is_cpu(); }
};

struct ModelWeights {
    Weight token_embd;
    Weight output;  // token_embd itself when the model ties them
    Vector output_norm;
    std::vector<float> rope_freqs;  // llama 3.1-style frequency factors, n_rot/2 values; empty when absent
    std::vector<LayerWeights> layers;
    // gemma4-assistant: the projections from [target embedding, target hidden] into the draft and from
    // the draft's output back to the target's hidden size
    Weight nextn_proj_pre, nextn_proj_post;
};

}  // namespace runtime
