// Hyper-parameters of a decoder-only transformer, read from GGUF metadata under llama.cpp's key names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/metadata.h"

namespace runtime {

// The architecture families the runtime runs. Mixtral is `Llama` with expert tensors, as in llama.cpp.
enum class Arch { Llama, Qwen2, Qwen3, Qwen3Moe, GptOss, Gemma4, Gemma4Assistant, Qwen35Moe };

// How RoPE pairs the dimensions of a head. GGUF files of `llama` store Q/K rows permuted so that rotated
// pairs are adjacent (ggml's "normal" mode); the Qwen families keep HF's layout, pairing i with i + n_rot/2.
enum class RopeMode { Adjacent, Neox };

// YaRN RoPE scaling (rope.scaling.type = yarn): frequencies blended between interpolation and
// extrapolation over a ramp of dimensions, and cos/sin scaled by an attention factor.
struct Yarn {
    uint32_t n_ctx_orig = 0;  // rope.scaling.original_context_length
    float beta_fast = 32.0f;  // rope.scaling.yarn_beta_fast
    float beta_slow = 1.0f;   // rope.scaling.yarn_beta_slow
    float attn_factor = 1.0f; // rope.scaling.yarn_attn_factor, times 1 + 0.1 ln(factor)
    // HF's `truncate`: round the ramp's ends to whole dimensions (llama.cpp always does). gpt-oss's
    // config says false, and its reference (transformers) computes the ramp unrounded.
    bool truncate = true;
};

// Gemma 4 (gemma4, gemma4-assistant; read by gemma4/hparams_gemma4.cpp): two kinds of attention layer
// with their own head size, KV-head count and RoPE. The generic head_dim_k/n_head_kv describe the
// widest of the two K rows (the KV cache's rows), n_rot the full layers' rotation.
struct Gemma4HParams {
    uint32_t head_dim_swa = 0, head_dim_full = 0;
    uint32_t n_head_kv_swa = 0, n_head_kv_full = 0;
    uint32_t n_rot_swa = 0;           // rope.dimension_count_swa (the whole head)
    float rope_freq_base_swa = 10000.0f;
    float final_logit_softcap = 0.0f; // 0: none
    uint32_t n_embd_backbone = 0;     // assistant: the target's hidden size (embedding_length_out)
};

struct HParams {
    Arch arch = Arch::Llama;
    std::string arch_name;  // general.architecture as written in the file

    uint32_t n_ctx_train = 0;
    uint32_t n_embd = 0;
    uint32_t n_layer = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t head_dim_k = 0;  // attention.key_length, default n_embd / n_head
    uint32_t head_dim_v = 0;  // attention.value_length, default n_embd / n_head
    uint32_t n_ff = 0;        // dense FFN width (0 when every layer is MoE and the key is absent)

    uint32_t n_expert = 0;
    uint32_t n_expert_used = 0;
    uint32_t n_ff_exp = 0;  // expert FFN width
    // Top-k weights renormalised to sum 1; llama.cpp fixes this per architecture (true for
    // qwen3moe and mixtral) and a file may state it as expert_weights_norm.
    bool expert_weights_norm = true;
    float expert_weights_scale = 0.0f;  // 0 and 1 mean unscaled

    float rms_eps = 0.0f;
    uint32_t n_rot = 0;
    RopeMode rope_mode = RopeMode::Adjacent;
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor (linear scaling, or YaRN's factor)
    bool rope_yarn = false;        // rope.scaling.type = yarn (then `yarn` holds its parameters)
    Yarn yarn;
    // The factor cos and sin are multiplied by (YaRN's attention factor; 1 otherwise).
    float rope_attn_factor = 1.0f;

    // Sliding-window attention (gpt-oss): layers where is_swa(il) see the last n_swa positions
    // (their own included); 0 means every layer attends to the whole context.
    uint32_t n_swa = 0;
    uint32_t swa_period = 0;  // llama.cpp's pattern: layer il is SWA when il % period < period - 1
    // gpt-oss: attention sinks (attn_sinks), biases on attention, router and experts, the router's
    // softmax taken over the top-k logits, and the experts' clamped SwiGLU with these constants.
    bool attn_sinks = false;
    bool router_softmax_topk = false;
    float swiglu_alpha = 0.0f;  // 0: plain SwiGLU
    float swiglu_limit = 0.0f;
    // Per-layer sliding-window flags where the file states them as an array (gemma4); empty: swa_period.
    std::vector<uint8_t> swa_layers;
    Gemma4HParams gemma4;

    // qwen35moe: Gated DeltaNet (linear attention) layers between gated full-attention layers, and a
    // shared expert beside the routed ones (llama.cpp's ssm.* keys: conv kernel, value width
    // d_inner, state (= key head) size, value heads (time_step_rank) and key heads (group_count)).
    uint32_t full_attn_interval = 0;  // 0: every layer attends; else layer il is full when (il + 1) % it == 0
    uint32_t ssm_d_conv = 0, ssm_d_inner = 0, ssm_d_state = 0, ssm_n_v_heads = 0, ssm_n_k_heads = 0;
    uint32_t n_ff_shexp = 0;        // shared expert width (0: none)
    // Blocks after the n_layer main ones that hold a next-token-prediction (MTP) head
    // (nextn_predict_layers, counted in the file's block_count): loaded by llama.cpp for speculative
    // drafts, not run here.
    uint32_t n_layer_nextn = 0;
    bool attn_output_gate = false;  // attn_q also yields a per-element sigmoid gate on the attention output

    bool has_qk_norm() const { return arch == Arch::Qwen3 || arch == Arch::Qwen3Moe || arch == Arch::Qwen35Moe; }
    bool is_recurrent(uint32_t il) const { return full_attn_interval > 0 && (il + 1) % full_attn_interval != 0; }
    bool has_recurrent() const { return full_attn_interval > 1; }
    uint32_t ssm_head_v_dim() const { return ssm_n_v_heads ? ssm_d_inner / ssm_n_v_heads : 0; }
    uint32_t ssm_conv_dim() const { return 2 * ssm_n_k_heads * ssm_d_state + ssm_d_inner; }
    bool is_moe() const { return n_expert > 0; }
    bool is_swa(uint32_t il) const {
        if (!swa_layers.empty()) return il < swa_layers.size() && swa_layers[il] != 0;
        return n_swa > 0 && (swa_period == 0 || il % swa_period < swa_period - 1);
    }
    bool is_gemma4() const { return arch == Arch::Gemma4 || arch == Arch::Gemma4Assistant; }
    // The window layer il attends over (0: the whole context).
    uint32_t window(uint32_t il) const { return is_swa(il) ? n_swa : 0; }
    uint32_t n_embd_q() const { return n_head * head_dim_k; }
    uint32_t n_embd_k() const { return n_head_kv * head_dim_k; }
    uint32_t n_embd_v() const { return n_head_kv * head_dim_v; }
    uint32_t n_embd_attn_out() const { return n_head * head_dim_v; }

    // Reads and validates; a missing required key, an unknown architecture or inconsistent values
    // throw runtime::Error naming the key.
    static HParams from_metadata(const gguf::Metadata& meta);
};


}  // namespace runtime
