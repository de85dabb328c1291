// Gemma 4's tensors under llama.cpp's names (gguf-py's MODEL_ARCH.GEMMA4 / GEMMA4_ASSISTANT lists and
// llama.cpp's loader): shapes checked against the hyper-parameters of each layer's kind.
#include <string>

#include "gemma4/gemma4.h"
#include "gguf/text.h"
#include "model_layout.h"

namespace runtime {

bool bind_gemma4(const HParams& hp, const gguf::Metadata& metadata, Binder& b, ModelWeights& w) {
    const Gemma4HParams& g = hp.gemma4;
    const bool assistant = hp.arch == Arch::Gemma4Assistant;
    const int64_t n_embd = hp.n_embd;
    const gguf::TensorInfo* embd = b.find_tensor("token_embd.weight");
    if (!embd) b.fail("tensor token_embd.weight is missing");
    if (embd->dims.size() != 2 || embd->dims[0] != n_embd) {
        b.fail("tensor token_embd.weight has shape " + gguf::shape_text(embd->dims) + ", expected [" +
               std::to_string(n_embd) + ", n_vocab]");
    }
    if (!quant::can_dequantize(embd->type)) {
        b.fail("tensor token_embd.weight has type " + std::string(gguf::type_name(embd->type)) + ", which cannot be read");
    }
    const int64_t n_vocab = embd->dims[1];
    if (const gguf::Value* v = metadata.find(hp.arch_name + ".vocab_size")) {
        if (!v->is_integer() || v->as_u64() != static_cast<uint64_t>(n_vocab)) {
            b.fail(hp.arch_name + ".vocab_size " + v->to_display() + " differs from token_embd.weight's rows");
        }
    }
    w.token_embd.name = "token_embd.weight";
    w.token_embd.type = embd->type;
    w.token_embd.n_in = n_embd;
    w.token_embd.n_out = n_vocab;
    w.token_embd.row_bytes = gguf::row_size(embd->type, static_cast<uint64_t>(n_embd));
    w.output_norm = b.vector("output_norm.weight", n_embd);
    // the assistant's output is always its embedding (llama.cpp loads it so whatever the file holds)
    const bool tied = assistant || !b.has("output.weight");
    if (!tied) {
        w.output = b.matrix("output.weight", {n_embd, n_vocab});
    } else if (!can_matmul(embd->type)) {
        b.fail("token_embd.weight's type " + std::string(gguf::type_name(embd->type)) +
               " cannot serve as the output projection");
    }
    bool any_full = false;
    for (uint32_t il = 0; il < hp.n_layer; ++il) any_full |= !hp.is_swa(il);
    if (any_full) w.rope_freqs = b.vector("rope_freqs.weight", g.head_dim_full / 2).values;
    if (assistant) {
        const int64_t B = g.n_embd_backbone;
        w.nextn_proj_pre = b.matrix("nextn.pre_projection.weight", {2 * B, n_embd});
        w.nextn_proj_post = b.matrix("nextn.post_projection.weight", {n_embd, B});
    }

    w.layers.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        LayerWeights& L = w.layers[il];
        const std::string p = "blk." + std::to_string(il) + ".";
        const bool swa = hp.is_swa(il);
        const int64_t hd = swa ? g.head_dim_swa : g.head_dim_full;
        const int64_t kvw = (swa ? g.n_head_kv_swa : g.n_head_kv_full) * hd;
        const int64_t qw = hp.n_head * hd;
        L.attn_norm = b.vector(p + "attn_norm.weight", n_embd);
        L.wq = b.matrix(p + "attn_q.weight", {n_embd, qw});
        L.q_norm = b.vector(p + "attn_q_norm.weight", hd);
        if (!assistant) {
            L.wk = b.matrix(p + "attn_k.weight", {n_embd, kvw});
            L.wv = b.matrix(p + "attn_v.weight", {n_embd, kvw}, false);  // absent: V is K's projection
            L.k_norm = b.vector(p + "attn_k_norm.weight", hd);
        }
        L.wo = b.matrix(p + "attn_output.weight", {qw, n_embd});
        L.attn_post_norm = b.vector(p + "post_attention_norm.weight", n_embd);
        L.out_scale = b.vector(p + "layer_output_scale.weight", 1, assistant);
        L.ffn_norm = b.vector(p + "ffn_norm.weight", n_embd);
        L.ffn_gate = b.matrix(p + "ffn_gate.weight", {n_embd, hp.n_ff});
        L.ffn_up = b.matrix(p + "ffn_up.weight", {n_embd, hp.n_ff});
        L.ffn_down = b.matrix(p + "ffn_down.weight", {hp.n_ff, n_embd});
        L.ffn_post_norm = b.vector(p + "post_ffw_norm.weight", n_embd);
        if (hp.n_expert == 0) {
            if (b.has(p + "ffn_gate_inp.weight")) b.fail("tensor " + p + "ffn_gate_inp.weight without expert_count");
            continue;
        }
        const int64_t E = hp.n_expert, F = hp.n_ff_exp;
        // llama.cpp: a layer is MoE where it has a router
        L.gate_inp = b.matrix(p + "ffn_gate_inp.weight", {n_embd, E}, false);
        if (L.gate_inp.name.empty()) continue;  // (present() means placed, which comes later)
        L.gate_inp_s = b.vector(p + "ffn_gate_inp.scale", n_embd);
        L.ffn_pre_norm_2 = b.vector(p + "pre_ffw_norm_2.weight", n_embd);
        L.ffn_post_norm_1 = b.vector(p + "post_ffw_norm_1.weight", n_embd);
        L.ffn_post_norm_2 = b.vector(p + "post_ffw_norm_2.weight", n_embd);
        if (b.has(p + "ffn_gate_up_exps.weight")) {
            L.gate_up_exps = b.matrix(p + "ffn_gate_up_exps.weight", {n_embd, 2 * F, E});
        } else {
            L.gate_exps = b.matrix(p + "ffn_gate_exps.weight", {n_embd, F, E});
            L.up_exps = b.matrix(p + "ffn_up_exps.weight", {n_embd, F, E});
        }
        L.down_exps = b.matrix(p + "ffn_down_exps.weight", {F, n_embd, E});
        L.down_exps_s = b.vector(p + "ffn_down_exps.scale", E, false);
    }
    return tied;
}

}  // namespace runtime
