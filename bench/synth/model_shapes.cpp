#include "model_shapes.h"

#include <algorithm>
#include <stdexcept>

namespace synth {

namespace {

using gguf::Value;

struct Shape {
    const char* preset;
    const char* arch;
    const char* name;
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_expert, n_used, n_ff_exp, n_ff, n_vocab, n_ctx;
    float rope_base, rms_eps;
    const char* tokenizer_pre;
};

// Qwen3-30B-A3B: 48 layers, 128 experts (8 used) of width 768, GQA 32/4, 151,936-token vocabulary.
// gpt-oss-20b: 24 layers, 32 experts (4 used) of width 2880, GQA 64/8 of 64-wide heads, 201,088 tokens.
constexpr Shape kShapes[] = {
    {"qwen3-30b-a3b", "qwen3moe", "synthetic qwen3-30b-a3b shapes", 2048, 48, 32, 4, 128, 128, 8, 768, 6144, 151936,
     40960, 1e6f, 1e-6f, "qwen2"},
    {"gpt-oss-20b", "gpt-oss", "synthetic gpt-oss-20b shapes", 2880, 24, 64, 8, 64, 32, 4, 2880, 2880, 201088, 131072,
     150000.0f, 1e-5f, "gpt-4o"},
    // Qwen3.5-35B-A3B: 40 layers (Gated DeltaNet 3 of every 4), 256 experts (8 used) of width 512 plus a
    // shared one of 512, gated attention 16/2 of 256-wide heads, 248,320 tokens (n_ff: the shared width).
    {"qwen3.5-35b-a3b", "qwen35moe", "synthetic qwen3.5-35b-a3b shapes", 2048, 40, 16, 2, 256, 256, 8, 512, 512, 248320,
     262144, 1e7f, 1e-6f, "qwen35"},
};

// Qwen3.5-35B-A3B's linear attention: 16 key heads and 32 value heads of 128, a 4-tap convolution.
constexpr int64_t kQwen35KHeads = 16, kQwen35VHeads = 32, kQwen35HeadDim = 128, kQwen35Conv = 4;

// qwen35moe (llama.cpp's converter's names and shapes): linear-attention layers except every fourth,
// which has gated attention (attn_q yields q and a gate per head); routed and shared experts in all.
// ssm_a (= -exp(A_log)) and the dt bias are zero, so random weights cannot make the state grow.
void qwen35moe_tensors(const Shape& s, uint32_t L, std::vector<TensorSpec>& t) {
    const int64_t E = s.n_embd, Q = int64_t{s.n_head} * s.head_dim, KV = int64_t{s.n_head_kv} * s.head_dim;
    const int64_t X = s.n_expert, F = s.n_ff_exp, S = s.n_ff;
    const int64_t inner = kQwen35VHeads * kQwen35HeadDim, conv = 2 * kQwen35KHeads * kQwen35HeadDim + inner;
    for (uint32_t i = 0; i < L; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        t.push_back({b + "attn_norm.weight", {E}, Fill::Ones});
        if ((i + 1) % 4 != 0) {
            t.push_back({b + "attn_qkv.weight", {E, conv}});
            t.push_back({b + "attn_gate.weight", {E, inner}});
            t.push_back({b + "ssm_conv1d.weight", {kQwen35Conv, conv}});
            t.push_back({b + "ssm_dt.bias", {kQwen35VHeads}, Fill::Zeros});
            t.push_back({b + "ssm_a", {kQwen35VHeads}, Fill::Zeros});
            t.push_back({b + "ssm_beta.weight", {E, kQwen35VHeads}});
            t.push_back({b + "ssm_alpha.weight", {E, kQwen35VHeads}});
            t.push_back({b + "ssm_norm.weight", {kQwen35HeadDim}, Fill::Ones});
            t.push_back({b + "ssm_out.weight", {inner, E}});
        } else {
            t.push_back({b + "attn_q.weight", {E, 2 * Q}});
            t.push_back({b + "attn_k.weight", {E, KV}});
            t.push_back({b + "attn_v.weight", {E, KV}});
            t.push_back({b + "attn_output.weight", {Q, E}});
            t.push_back({b + "attn_q_norm.weight", {s.head_dim}, Fill::Ones});
            t.push_back({b + "attn_k_norm.weight", {s.head_dim}, Fill::Ones});
        }
        t.push_back({b + "post_attention_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_gate_inp.weight", {E, X}});
        t.push_back({b + "ffn_gate_exps.weight", {E, F, X}});
        t.push_back({b + "ffn_up_exps.weight", {E, F, X}});
        t.push_back({b + "ffn_down_exps.weight", {F, E, X}});
        t.push_back({b + "ffn_gate_inp_shexp.weight", {E, 1}});
        t.push_back({b + "ffn_gate_shexp.weight", {E, S}});
        t.push_back({b + "ffn_up_shexp.weight", {E, S}});
        t.push_back({b + "ffn_down_shexp.weight", {S, E}});
    }
}

// A byte-level BPE vocabulary of the right size: the 256 byte symbols, one merge, then filler tokens.
void add_tokenizer(gguf::Metadata& md, const Shape& s) {
    std::vector<std::string> tokens;
    auto utf8 = [](uint32_t cp) {
        std::string o;
        if (cp < 0x80) {
            o += static_cast<char>(cp);
        } else {
            o += static_cast<char>(0xC0 | (cp >> 6));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        }
        return o;
    };
    // GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest move to 256 + i
    for (uint32_t c = 33; c < 127; ++c) tokens.push_back(utf8(c));
    for (uint32_t c = 161; c < 173; ++c) tokens.push_back(utf8(c));
    for (uint32_t c = 174; c < 256; ++c) tokens.push_back(utf8(c));
    for (uint32_t i = 0; tokens.size() < 256; ++i) tokens.push_back(utf8(256 + i));
    tokens.push_back("\xC4\xA0t");  // "Ġt"
    while (tokens.size() < s.n_vocab) tokens.push_back("<|t" + std::to_string(tokens.size() - 257) + "|>");
    md.set("tokenizer.ggml.model", Value::string("gpt2"));
    md.set("tokenizer.ggml.pre", Value::string(s.tokenizer_pre));
    md.set("tokenizer.ggml.tokens", Value::string_array(tokens));
    md.set("tokenizer.ggml.token_type", Value::i32_array(std::vector<int32_t>(s.n_vocab, 1)));
    md.set("tokenizer.ggml.merges", Value::string_array({"\xC4\xA0 t"}));
    md.set("tokenizer.ggml.bos_token_id", Value::u32(s.n_vocab - 1));
    md.set("tokenizer.ggml.eos_token_id", Value::u32(s.n_vocab - 1));
}

void qwen3moe_tensors(const Shape& s, uint32_t L, std::vector<TensorSpec>& t) {
    const int64_t E = s.n_embd, Q = int64_t{s.n_head} * s.head_dim, KV = int64_t{s.n_head_kv} * s.head_dim;
    const int64_t X = s.n_expert, F = s.n_ff_exp;
    for (uint32_t i = 0; i < L; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        t.push_back({b + "attn_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "attn_q.weight", {E, Q}});
        t.push_back({b + "attn_k.weight", {E, KV}});
        t.push_back({b + "attn_v.weight", {E, KV}});
        t.push_back({b + "attn_output.weight", {Q, E}});
        t.push_back({b + "attn_q_norm.weight", {s.head_dim}, Fill::Ones});
        t.push_back({b + "attn_k_norm.weight", {s.head_dim}, Fill::Ones});
        t.push_back({b + "ffn_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_gate_inp.weight", {E, X}});
        t.push_back({b + "ffn_gate_exps.weight", {E, F, X}});
        t.push_back({b + "ffn_up_exps.weight", {E, F, X}});
        t.push_back({b + "ffn_down_exps.weight", {F, E, X}});
    }
}

// gpt-oss: biases on attention and experts, attention sinks, a post-attention norm.
void gpt_oss_tensors(const Shape& s, uint32_t L, std::vector<TensorSpec>& t) {
    const int64_t E = s.n_embd, Q = int64_t{s.n_head} * s.head_dim, KV = int64_t{s.n_head_kv} * s.head_dim;
    const int64_t X = s.n_expert, F = s.n_ff_exp;
    for (uint32_t i = 0; i < L; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        t.push_back({b + "attn_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "attn_q.weight", {E, Q}});
        t.push_back({b + "attn_q.bias", {Q}, Fill::Zeros});
        t.push_back({b + "attn_k.weight", {E, KV}});
        t.push_back({b + "attn_k.bias", {KV}, Fill::Zeros});
        t.push_back({b + "attn_v.weight", {E, KV}});
        t.push_back({b + "attn_v.bias", {KV}, Fill::Zeros});
        t.push_back({b + "attn_output.weight", {Q, E}});
        t.push_back({b + "attn_output.bias", {E}, Fill::Zeros});
        t.push_back({b + "attn_sinks.weight", {s.n_head}, Fill::Zeros});
        t.push_back({b + "post_attention_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_gate_inp.weight", {E, X}});
        t.push_back({b + "ffn_gate_inp.bias", {X}, Fill::Zeros});
        t.push_back({b + "ffn_gate_exps.weight", {E, F, X}});
        t.push_back({b + "ffn_gate_exps.bias", {F, X}, Fill::Zeros});
        t.push_back({b + "ffn_up_exps.weight", {E, F, X}});
        t.push_back({b + "ffn_up_exps.bias", {F, X}, Fill::Zeros});
        t.push_back({b + "ffn_down_exps.weight", {F, E, X}});
        t.push_back({b + "ffn_down_exps.bias", {E, X}, Fill::Zeros});
    }
}

}  // namespace

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const Shape& s : kShapes) names.emplace_back(s.preset);
    names.emplace_back("gemma-4-26b-a4b");
    return names;
}

ModelSpec make_model(const std::string& preset, Shrink shrink) {
    if (preset == "gemma-4-26b-a4b") return gemma4_model(preset, shrink);
    const Shape* found = nullptr;
    for (const Shape& each : kShapes) {
        if (preset == each.preset) found = &each;
    }
    if (!found) throw std::invalid_argument("unknown preset '" + preset + "'");
    Shape shape = *found;
    const Shape* s = &shape;
    auto shrink_to = [&](uint32_t& count, uint32_t want, const char* what) {
        if (want > count) {
            throw std::invalid_argument(preset + " has " + std::to_string(count) + " " + what + ", not " +
                                        std::to_string(want));
        }
        if (want > 0) count = want;
    };
    shrink_to(shape.n_vocab, shrink.n_vocab, "tokens");
    shrink_to(shape.n_layer, shrink.n_layers, "layers");
    shrink_to(shape.n_expert, shrink.n_expert, "experts");
    shape.n_used = std::min(shape.n_used, shape.n_expert);
    const uint32_t L = s->n_layer;
    ModelSpec m;
    m.preset = preset;
    auto& md = m.metadata;
    const std::string a = s->arch;
    md.set("general.architecture", Value::string(a));
    md.set("general.name", Value::string(s->name));
    md.set("general.file_type", Value::u32(0));  // set by the recipe, here to keep the usual key order
    md.set("general.quantization_version", Value::u32(2));
    md.set(a + ".block_count", Value::u32(L));
    md.set(a + ".context_length", Value::u32(s->n_ctx));
    md.set(a + ".embedding_length", Value::u32(s->n_embd));
    if (a != "qwen35moe") md.set(a + ".feed_forward_length", Value::u32(s->n_ff));
    md.set(a + ".attention.head_count", Value::u32(s->n_head));
    md.set(a + ".attention.head_count_kv", Value::u32(s->n_head_kv));
    md.set(a + ".rope.freq_base", Value::f32(s->rope_base));
    md.set(a + ".attention.layer_norm_rms_epsilon", Value::f32(s->rms_eps));
    md.set(a + ".expert_count", Value::u32(s->n_expert));
    md.set(a + ".expert_used_count", Value::u32(s->n_used));
    md.set(a + ".attention.key_length", Value::u32(s->head_dim));
    md.set(a + ".attention.value_length", Value::u32(s->head_dim));
    md.set(a + ".expert_feed_forward_length", Value::u32(s->n_ff_exp));
    if (a == "gpt-oss") {
        md.set(a + ".attention.sliding_window", Value::u32(128));
        md.set(a + ".rope.scaling.type", Value::string("yarn"));
        md.set(a + ".rope.scaling.factor", Value::f32(32.0f));
        md.set(a + ".rope.scaling.original_context_length", Value::u32(4096));
    }
    if (a == "qwen35moe") {
        md.set(a + ".expert_shared_feed_forward_length", Value::u32(s->n_ff));
        md.set(a + ".ssm.conv_kernel", Value::u32(kQwen35Conv));
        md.set(a + ".ssm.state_size", Value::u32(kQwen35HeadDim));
        md.set(a + ".ssm.group_count", Value::u32(kQwen35KHeads));
        md.set(a + ".ssm.time_step_rank", Value::u32(kQwen35VHeads));
        md.set(a + ".ssm.inner_size", Value::u32(kQwen35VHeads * kQwen35HeadDim));
        md.set(a + ".full_attention_interval", Value::u32(4));
        md.set(a + ".rope.dimension_count", Value::u32(s->head_dim / 4));
        md.set(a + ".rope.dimension_sections", Value::i32_array({11, 11, 10, 0}));
    }
    add_tokenizer(md, *s);

    const int64_t E = s->n_embd, V = s->n_vocab;
    m.tensors.push_back({"token_embd.weight", {E, V}});
    m.tensors.push_back({"output_norm.weight", {E}, Fill::Ones});
    m.tensors.push_back({"output.weight", {E, V}});
    if (a == "gpt-oss") {
        gpt_oss_tensors(*s, L, m.tensors);
    } else if (a == "qwen35moe") {
        qwen35moe_tensors(*s, L, m.tensors);
    } else {
        qwen3moe_tensors(*s, L, m.tensors);
    }
    return m;
}

}  // namespace synth
