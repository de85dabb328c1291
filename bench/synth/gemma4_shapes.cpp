// Gemma 4 26B-A4B's GGUF as llama.cpp's converter writes it (google/gemma-4-26B-A4B's text config):
// 30 layers in groups of five sliding-window layers (8 KV heads of 256) and one full-attention layer
// (2 KV heads of 512, no attn_v: V is K's projection), 16 query heads, hidden 2816, a dense MLP of 2112
// beside 128 experts (8 used) of 704 with their gate and up fused, 262,144 tokens, tied embeddings.
#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "model_shapes.h"

namespace synth {

namespace {

using gguf::Value;

constexpr uint32_t kEmbd = 2816, kLayers = 30, kHeads = 16, kKvSwa = 8, kKvFull = 2, kHdSwa = 256, kHdFull = 512;
constexpr uint32_t kExperts = 128, kUsed = 8, kFfExp = 704, kFf = 2112, kVocab = 262144, kCtx = 262144, kWindow = 1024;

bool is_swa(uint32_t il) { return il % 6 != 5; }

// A SentencePiece-style vocabulary of the right size: the four specials at Gemma's ids, the byte
// fallback tokens, "▁" and "▁t" (one merge), then filler.
void add_tokenizer(gguf::Metadata& md, uint32_t n_vocab) {
    std::vector<std::string> tokens = {"<pad>", "<eos>", "<bos>", "<unk>"};
    std::vector<int32_t> types = {3, 3, 3, 3};
    char buf[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.emplace_back(buf);
        types.push_back(6);
    }
    tokens.emplace_back("\xE2\x96\x81");
    tokens.emplace_back("t");
    tokens.emplace_back("\xE2\x96\x81t");
    while (tokens.size() < n_vocab) tokens.push_back("<unused" + std::to_string(tokens.size()) + ">");
    types.resize(n_vocab, 1);
    md.set("tokenizer.ggml.model", Value::string("gemma4"));
    md.set("tokenizer.ggml.tokens", Value::string_array(tokens));
    md.set("tokenizer.ggml.scores", Value::f32_array(std::vector<float>(n_vocab, -1000.0f)));
    md.set("tokenizer.ggml.token_type", Value::i32_array(types));
    md.set("tokenizer.ggml.merges", Value::string_array({"\xE2\x96\x81 t"}));
    md.set("tokenizer.ggml.bos_token_id", Value::u32(2));
    md.set("tokenizer.ggml.eos_token_id", Value::u32(1));
    md.set("tokenizer.ggml.unknown_token_id", Value::u32(3));
    md.set("tokenizer.ggml.padding_token_id", Value::u32(0));
    md.set("tokenizer.ggml.add_bos_token", Value::boolean(true));
    md.set("tokenizer.ggml.add_space_prefix", Value::boolean(false));
}

}  // namespace

ModelSpec gemma4_model(const std::string& preset, const Shrink& shrink) {
    uint32_t L = kLayers, X = kExperts, V = kVocab;
    auto shrink_to = [&](uint32_t& count, uint32_t want, const char* what) {
        if (want > count) {
            throw std::invalid_argument(preset + " has " + std::to_string(count) + " " + what + ", not " + std::to_string(want));
        }
        if (want > 0) count = want;
    };
    shrink_to(V, shrink.n_vocab, "tokens");
    shrink_to(L, shrink.n_layers, "layers");
    shrink_to(X, shrink.n_expert, "experts");
    if (V < 264) throw std::invalid_argument(preset + " needs at least 264 tokens (specials, bytes, one merge)");
    const uint32_t used = std::min(kUsed, X);
    ModelSpec m;
    m.preset = preset;
    auto& md = m.metadata;
    const std::string a = "gemma4.";
    md.set("general.architecture", Value::string("gemma4"));
    md.set("general.name", Value::string("synthetic gemma-4-26b-a4b shapes"));
    md.set("general.file_type", Value::u32(0));
    md.set("general.quantization_version", Value::u32(2));
    md.set(a + "block_count", Value::u32(L));
    md.set(a + "context_length", Value::u32(kCtx));
    md.set(a + "embedding_length", Value::u32(kEmbd));
    md.set(a + "feed_forward_length", Value::u32(kFf));
    md.set(a + "attention.head_count", Value::u32(kHeads));
    std::vector<int32_t> kv;
    gguf::Array pattern;
    pattern.elem_type = gguf::ValueType::Bool;
    for (uint32_t il = 0; il < L; ++il) {
        kv.push_back(static_cast<int32_t>(is_swa(il) ? kKvSwa : kKvFull));
        pattern.items.push_back(Value::boolean(is_swa(il)));
    }
    md.set(a + "attention.head_count_kv", Value::i32_array(kv));
    md.set(a + "rope.freq_base", Value::f32(1e6f));
    md.set(a + "rope.freq_base_swa", Value::f32(1e4f));
    md.set(a + "attention.layer_norm_rms_epsilon", Value::f32(1e-6f));
    md.set(a + "expert_count", Value::u32(X));
    md.set(a + "expert_used_count", Value::u32(used));
    md.set(a + "attention.key_length", Value::u32(kHdFull));
    md.set(a + "attention.value_length", Value::u32(kHdFull));
    md.set(a + "final_logit_softcapping", Value::f32(30.0f));
    md.set(a + "attention.sliding_window", Value::u32(kWindow));
    md.set(a + "attention.shared_kv_layers", Value::u32(0));
    md.set(a + "embedding_length_per_layer_input", Value::u32(0));
    md.set(a + "attention.sliding_window_pattern", Value::array(std::move(pattern)));
    md.set(a + "attention.key_length_swa", Value::u32(kHdSwa));
    md.set(a + "attention.value_length_swa", Value::u32(kHdSwa));
    md.set(a + "expert_feed_forward_length", Value::u32(kFfExp));
    md.set(a + "rope.dimension_count", Value::u32(kHdFull));
    md.set(a + "rope.dimension_count_swa", Value::u32(kHdSwa));
    add_tokenizer(md, V);

    const int64_t E = kEmbd;
    auto& t = m.tensors;
    // rope_freqs: ones here (every pair rotated) where the real file holds 1e30 past the proportional
    // quarter; the speed of a run does not depend on it
    t.push_back({"rope_freqs.weight", {kHdFull / 2}, Fill::Ones});
    t.push_back({"token_embd.weight", {E, V}});
    t.push_back({"output_norm.weight", {E}, Fill::Ones});
    for (uint32_t il = 0; il < L; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        const int64_t hd = is_swa(il) ? kHdSwa : kHdFull, KV = hd * (is_swa(il) ? kKvSwa : kKvFull), Q = hd * kHeads;
        t.push_back({b + "attn_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "attn_q.weight", {E, Q}});
        t.push_back({b + "attn_k.weight", {E, KV}});
        if (is_swa(il)) t.push_back({b + "attn_v.weight", {E, KV}});
        t.push_back({b + "attn_output.weight", {Q, E}});
        t.push_back({b + "attn_q_norm.weight", {hd}, Fill::Ones});
        t.push_back({b + "attn_k_norm.weight", {hd}, Fill::Ones});
        t.push_back({b + "post_attention_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_gate.weight", {E, kFf}});
        t.push_back({b + "ffn_up.weight", {E, kFf}});
        t.push_back({b + "ffn_down.weight", {kFf, E}});
        t.push_back({b + "post_ffw_norm.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_gate_inp.weight", {E, X}});
        t.push_back({b + "ffn_gate_inp.scale", {E}, Fill::Ones});
        t.push_back({b + "pre_ffw_norm_2.weight", {E}, Fill::Ones});
        t.push_back({b + "post_ffw_norm_1.weight", {E}, Fill::Ones});
        t.push_back({b + "post_ffw_norm_2.weight", {E}, Fill::Ones});
        t.push_back({b + "ffn_gate_up_exps.weight", {E, 2 * kFfExp, X}});
        t.push_back({b + "ffn_down_exps.weight", {kFfExp, E, X}});
        t.push_back({b + "ffn_down_exps.scale", {X}, Fill::Ones});
        t.push_back({b + "layer_output_scale.weight", {1}, Fill::Ones});
    }
    return m;
}

}  // namespace synth
