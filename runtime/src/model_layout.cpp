// Binding a model's tensors by llama.cpp's names and checking them against the hyper-parameters: what
// loading a model and gguf-convert's check before writing share. Kept apart from the backends so that a
// tool that only checks a layout links no GPU library.
#include "model_layout.h"

#include <charconv>

#include "cpu/matmul.h"
#include "gemma4/gemma4.h"
#include "gguf/text.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace runtime {

using gguf::GgmlType;

bool can_matmul(GgmlType type) {
    if (cpu::is_float_type(type)) return true;
    try {
        return quant::can_quantize(quant::vec_dot_type(type));
    } catch (const quant::Error&) {
        return false;
    }
}

namespace {

constexpr uint32_t kMaxExperts = 512;  // llama.cpp's LLAMA_MAX_EXPERTS

// block_count must match the blocks the file has tensors for: a smaller count would silently
// ignore blocks (a wrong model that still runs), a larger one would size per-layer state from a
// number the file does not back. Checked before anything is sized from it.
void check_block_count(const HParams& hp, const Binder& b) {
    int64_t last = -1;
    std::string last_name;
    for (const auto& t : b.tensors()) {
        if (!t.name.starts_with("blk.")) continue;
        int64_t il = 0;
        const char* begin = t.name.data() + 4;
        const auto [end, ec] = std::from_chars(begin, t.name.data() + t.name.size(), il);
        if (ec != std::errc() || end == begin || *end != '.') continue;
        if (il > last) {
            last = il;
            last_name = t.name;
        }
    }
    const std::string key = hp.arch_name + ".block_count " + std::to_string(hp.n_layer + hp.n_layer_nextn);
    if (last < 0) b.fail(key + ", but the file has no blk.N tensors");
    if (last + 1 != static_cast<int64_t>(hp.n_layer + hp.n_layer_nextn)) {
        b.fail(key + " disagrees with the tensors, which go up to block " + std::to_string(last) + " (" + last_name +
               ")");
    }
}

// qwen35moe's blocks (llama.cpp's names and shapes): Gated DeltaNet layers where hp.is_recurrent(il),
// gated full attention (attn_q yields q and the gate per head) elsewhere, and in every layer routed
// experts plus a shared expert with a one-logit sigmoid gate.
void bind_qwen35(const HParams& hp, Binder& b, ModelWeights& weights) {
    const int64_t n_embd = hp.n_embd;
    weights.layers.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        LayerWeights& L = weights.layers[il];
        const std::string p = "blk." + std::to_string(il) + ".";
        L.attn_norm = b.vector(p + "attn_norm.weight", n_embd);
        if (hp.is_recurrent(il)) {
            DeltaNetWeights& d = L.delta;
            const int64_t inner = hp.ssm_d_inner, heads = hp.ssm_n_v_heads;
            d.qkv = b.matrix(p + "attn_qkv.weight", {n_embd, hp.ssm_conv_dim()});
            d.gate = b.matrix(p + "attn_gate.weight", {n_embd, inner});
            d.beta = b.matrix(p + "ssm_beta.weight", {n_embd, heads});
            d.alpha = b.matrix(p + "ssm_alpha.weight", {n_embd, heads});
            d.out = b.matrix(p + "ssm_out.weight", {inner, n_embd});
            d.conv = b.vector(p + "ssm_conv1d.weight", std::vector<int64_t>{hp.ssm_d_conv, hp.ssm_conv_dim()});
            d.dt_bias = b.vector(p + "ssm_dt.bias", heads);
            d.a = b.vector(p + "ssm_a", heads);
            d.norm = b.vector(p + "ssm_norm.weight", hp.ssm_head_v_dim());
        } else {
            L.wq = b.matrix(p + "attn_q.weight", {n_embd, 2 * hp.n_embd_q()});
            L.wk = b.matrix(p + "attn_k.weight", {n_embd, hp.n_embd_k()});
            L.wv = b.matrix(p + "attn_v.weight", {n_embd, hp.n_embd_v()});
            L.wo = b.matrix(p + "attn_output.weight", {hp.n_embd_attn_out(), n_embd});
            L.q_norm = b.vector(p + "attn_q_norm.weight", hp.head_dim_k);
            L.k_norm = b.vector(p + "attn_k_norm.weight", hp.head_dim_k);
        }
        L.ffn_norm = b.vector(p + "post_attention_norm.weight", n_embd);
        const int64_t E = hp.n_expert, F = hp.n_ff_exp;
        L.gate_inp = b.matrix(p + "ffn_gate_inp.weight", {n_embd, E});
        L.gate_exps = b.matrix(p + "ffn_gate_exps.weight", {n_embd, F, E});
        L.up_exps = b.matrix(p + "ffn_up_exps.weight", {n_embd, F, E});
        L.down_exps = b.matrix(p + "ffn_down_exps.weight", {F, n_embd, E});
        if (hp.n_ff_shexp > 0) {
            const int64_t S = hp.n_ff_shexp;
            // the converter writes the gate as [1, n_embd] (ggml {n_embd, 1}); llama.cpp also reads {n_embd}
            const gguf::TensorInfo* g = b.find_tensor(p + "ffn_gate_inp_shexp.weight");
            const std::vector<int64_t> gdims = g && g->dims.size() == 1 ? std::vector<int64_t>{n_embd}
                                                                         : std::vector<int64_t>{n_embd, 1};
            L.gate_inp_shexp = b.matrix(p + "ffn_gate_inp_shexp.weight", gdims);
            L.gate_shexp = b.matrix(p + "ffn_gate_shexp.weight", {n_embd, S});
            L.up_shexp = b.matrix(p + "ffn_up_shexp.weight", {n_embd, S});
            L.down_shexp = b.matrix(p + "ffn_down_shexp.weight", {S, n_embd});
        }
    }
}

}  // namespace

bool bind_weights(const HParams& hp, const gguf::Metadata& metadata, Binder& b, ModelWeights& weights) {
    check_block_count(hp, b);
    if (hp.is_gemma4()) return bind_gemma4(hp, metadata, b, weights);
    if (hp.n_expert > kMaxExperts) {
        b.fail("expert_count " + std::to_string(hp.n_expert) + " exceeds " + std::to_string(kMaxExperts));
    }
    const int64_t n_embd = hp.n_embd;

    const gguf::TensorInfo* embd = b.find_tensor("token_embd.weight");
    if (!embd) b.fail("tensor token_embd.weight is missing");
    if (embd->dims.size() != 2 || embd->dims[0] != n_embd) {
        b.fail("tensor token_embd.weight has shape " + gguf::shape_text(embd->dims) + ", expected [" +
               std::to_string(n_embd) + ", n_vocab]");
    }
    if (!quant::can_dequantize(embd->type)) {
        b.fail("tensor token_embd.weight has type " + std::string(gguf::type_name(embd->type)) +
               ", which cannot be read");
    }
    const int64_t n_vocab = embd->dims[1];
    if (const gguf::Value* v = metadata.find(hp.arch_name + ".vocab_size")) {
        if (!v->is_integer() || v->as_u64() != static_cast<uint64_t>(n_vocab)) {
            b.fail(hp.arch_name + ".vocab_size " + v->to_display() + " differs from token_embd.weight's " +
                   std::to_string(n_vocab) + " rows");
        }
    }
    // the embedding is read a row at a time (dequantized), not multiplied: bind it without the dot check
    weights.token_embd.name = "token_embd.weight";
    weights.token_embd.type = embd->type;
    weights.token_embd.n_in = n_embd;
    weights.token_embd.n_out = n_vocab;
    weights.token_embd.row_bytes = gguf::row_size(embd->type, static_cast<uint64_t>(n_embd));

    weights.output_norm = b.vector("output_norm.weight", n_embd);
    const bool tied = !b.has("output.weight");
    if (!tied) {
        weights.output = b.matrix("output.weight", {n_embd, n_vocab});
    } else if (!can_matmul(embd->type)) {
        b.fail("tensor output.weight is missing and token_embd.weight's type " +
               std::string(gguf::type_name(embd->type)) + " cannot serve as the output projection");
    }
    if (hp.arch == Arch::Llama && b.has("rope_freqs.weight")) {
        weights.rope_freqs = b.vector("rope_freqs.weight", hp.n_rot / 2).values;
    }

    if (hp.arch == Arch::Qwen35Moe) {
        bind_qwen35(hp, b, weights);
        return tied;
    }
    const bool biased_qkv = hp.arch == Arch::Qwen2 || hp.arch == Arch::GptOss;
    const bool gpt_oss = hp.arch == Arch::GptOss;
    weights.layers.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        LayerWeights& L = weights.layers[il];
        const std::string p = "blk." + std::to_string(il) + ".";
        L.attn_norm = b.vector(p + "attn_norm.weight", n_embd);
        L.wq = b.matrix(p + "attn_q.weight", {n_embd, hp.n_embd_q()});
        L.wk = b.matrix(p + "attn_k.weight", {n_embd, hp.n_embd_k()});
        L.wv = b.matrix(p + "attn_v.weight", {n_embd, hp.n_embd_v()});
        L.wo = b.matrix(p + "attn_output.weight", {hp.n_embd_attn_out(), n_embd});
        // qwen2 requires the q/k/v biases; llama files may carry them (and an output bias) optionally
        L.bq = b.vector(p + "attn_q.bias", hp.n_embd_q(), biased_qkv);
        L.bk = b.vector(p + "attn_k.bias", hp.n_embd_k(), biased_qkv);
        L.bv = b.vector(p + "attn_v.bias", hp.n_embd_v(), biased_qkv);
        L.bo = b.vector(p + "attn_output.bias", n_embd, gpt_oss);
        if (hp.attn_sinks) L.attn_sinks = b.vector(p + "attn_sinks.weight", hp.n_head);
        if (hp.has_qk_norm()) {
            L.q_norm = b.vector(p + "attn_q_norm.weight", hp.head_dim_k);
            L.k_norm = b.vector(p + "attn_k_norm.weight", hp.head_dim_k);
        }
        // gpt-oss names its pre-FFN norm after the attention it follows (llama.cpp's attn_post_norm)
        L.ffn_norm = b.vector(p + (gpt_oss ? "post_attention_norm.weight" : "ffn_norm.weight"), n_embd);
        if (hp.is_moe()) {
            const int64_t E = hp.n_expert, F = hp.n_ff_exp;
            L.gate_inp = b.matrix(p + "ffn_gate_inp.weight", {n_embd, E});
            L.gate_exps = b.matrix(p + "ffn_gate_exps.weight", {n_embd, F, E});
            L.up_exps = b.matrix(p + "ffn_up_exps.weight", {n_embd, F, E});
            L.down_exps = b.matrix(p + "ffn_down_exps.weight", {F, n_embd, E});
            if (gpt_oss) {
                L.gate_inp_b = b.vector(p + "ffn_gate_inp.bias", E);
                L.gate_exps_b = b.vector(p + "ffn_gate_exps.bias", {F, E});
                L.up_exps_b = b.vector(p + "ffn_up_exps.bias", {F, E});
                L.down_exps_b = b.vector(p + "ffn_down_exps.bias", {n_embd, E});
            }
        } else {
            L.ffn_gate = b.matrix(p + "ffn_gate.weight", {n_embd, hp.n_ff});
            L.ffn_up = b.matrix(p + "ffn_up.weight", {n_embd, hp.n_ff});
            L.ffn_down = b.matrix(p + "ffn_down.weight", {hp.n_ff, n_embd});
        }
    }

    return tied;
}

void check_model_layout(const gguf::Metadata& metadata, const std::vector<gguf::TensorInfo>& tensors,
                        const std::string& path) {
    HParams hp;
    try {
        hp = HParams::from_metadata(metadata);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
    Binder b(tensors, path);
    ModelWeights scratch;
    bind_weights(hp, metadata, b, scratch);
}

}  // namespace runtime
