// The model classes gguf-convert understands, with what differs between them: the GGUF
// architecture name, which tensors exist, how experts are stored, RoPE details.
#pragma once

#include <string>
#include <string_view>

#include "convert/hf_config.h"

namespace convert {

// How a checkpoint stores MoE expert weights, one 2-D tensor per expert and projection.
enum class ExpertLayout {
    None,
    Mixtral,  // block_sparse_moe.experts.E.w1/w2/w3 (gate/down/up), stacked in that order
    Qwen,     // mlp.experts.E.down_proj/gate_proj/up_proj, stacked in that order
    // gpt-oss: fused per-layer MXFP4 tensors mlp.experts.{gate_up,down}_proj_{blocks,scales} (gate and
    // up rows interleaved) and their biases, kept as MXFP4
    GptOss,
    // gemma4: per-layer tensors experts.gate_up_proj [E, 2F, H] and experts.down_proj kept fused
    // (ffn_gate_up_exps), planned by plan_gemma4 (convert/gemma4.h)
    Gemma4,
    // Qwen3.5-MoE: fused mlp.experts.{gate_up,down}_proj (transformers) or one tensor per expert (as
    // released), a shared expert, and Gated DeltaNet layers; planned by plan_qwen35
    Qwen35,
};

struct Architecture {
    std::string_view hf_class;  // config.json "architectures"[0]
    std::string_view name;      // GGUF general.architecture
    bool llama_layout;          // Q/K rows permuted for llama.cpp's RoPE; vocab_size/rope.dimension_count keys
    ExpertLayout experts;
    bool qk_norm;               // attn_q_norm / attn_k_norm tensors
    bool dense_ffn;             // ffn_gate / ffn_up / ffn_down tensors
};

// The architecture of a checkpoint; an unknown one throws listing those supported.
const Architecture& find_architecture(const HfConfig& hparams);
// "LlamaForCausalLM, MistralForCausalLM, ..." for messages and --help.
std::string supported_architectures();

}  // namespace convert
