// Qwen3.5-MoE (llama.cpp's qwen35moe) tensors: llama.cpp's names and its transforms of the
// linear-attention (Gated DeltaNet) weights, the 1 + w norms and the routed experts, fused
// (transformers' gate_up_proj / down_proj) or one tensor per expert (as released).
#include "qwen35_plan.h"

#include <map>

#include "convert/error.h"
#include "gguf/text.h"
#include "layer_names.h"

namespace convert {

namespace {

using ValueOp = PlannedTensor::ValueOp;

// HF names inside a decoder layer -> llama.cpp's, with what the converter does to the values.
struct Qwen35Name {
    std::string_view hf, gguf;
    enum Kind { Plain, PlusOne, QkvRows, VRows, HeadRows, NegExpHeads, HeadVector, Conv, OutCols } kind;
};
constexpr Qwen35Name kNames[] = {
    {"input_layernorm.weight", "attn_norm.weight", Qwen35Name::PlusOne},
    {"post_attention_layernorm.weight", "post_attention_norm.weight", Qwen35Name::PlusOne},
    {"self_attn.q_proj.weight", "attn_q.weight", Qwen35Name::Plain},
    {"self_attn.k_proj.weight", "attn_k.weight", Qwen35Name::Plain},
    {"self_attn.v_proj.weight", "attn_v.weight", Qwen35Name::Plain},
    {"self_attn.o_proj.weight", "attn_output.weight", Qwen35Name::Plain},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", Qwen35Name::PlusOne},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", Qwen35Name::PlusOne},
    {"linear_attn.in_proj_qkv.weight", "attn_qkv.weight", Qwen35Name::QkvRows},
    {"linear_attn.in_proj_z.weight", "attn_gate.weight", Qwen35Name::VRows},
    {"linear_attn.in_proj_b.weight", "ssm_beta.weight", Qwen35Name::HeadRows},
    {"linear_attn.in_proj_a.weight", "ssm_alpha.weight", Qwen35Name::HeadRows},
    {"linear_attn.conv1d.weight", "ssm_conv1d.weight", Qwen35Name::Conv},
    {"linear_attn.dt_bias", "ssm_dt.bias", Qwen35Name::HeadVector},
    {"linear_attn.A_log", "ssm_a", Qwen35Name::NegExpHeads},
    {"linear_attn.norm.weight", "ssm_norm.weight", Qwen35Name::Plain},  // the gated norm: no 1 + w
    {"linear_attn.out_proj.weight", "ssm_out.weight", Qwen35Name::OutCols},
    {"mlp.gate.weight", "ffn_gate_inp.weight", Qwen35Name::Plain},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight", Qwen35Name::Plain},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight", Qwen35Name::Plain},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight", Qwen35Name::Plain},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight", Qwen35Name::Plain},
};

struct Dims {
    int64_t n_layers, n_experts, k_heads, v_heads, k_dim, v_dim;
};

// llama.cpp reorders the value heads from grouped by key head (HF: v heads r*k .. r*k+r-1 belong to
// key head k) to tiled (k0, k1, ..., k0, k1, ...) so that ggml's broadcast pairs them: output head
// j*n_k + k is HF's head k*r + j. Returns, per output element, its source element.
std::vector<int64_t> tiled_v_order(const Dims& d, int64_t head_dim) {
    const int64_t r = d.v_heads / d.k_heads;
    std::vector<int64_t> out;
    for (int64_t j = 0; j < r; ++j)
        for (int64_t k = 0; k < d.k_heads; ++k)
            for (int64_t e = 0; e < head_dim; ++e) out.push_back((k * r + j) * head_dim + e);
    return out;
}

void require(const SafeTensor* t, std::vector<int64_t> shape) {
    if (t->shape != shape)
        throw Error(*t->file + ": tensor '" + t->name + "' has shape " + gguf::shape_text(t->shape) + ", expected " +
                    gguf::shape_text(shape));
}

PlannedTensor transformed(const SafeTensor* t, std::string name, const Qwen35Name::Kind kind, const Dims& d,
                          const HfConfig& h) {
    PlannedTensor out;
    out.name = std::move(name);
    out.parts = {t};
    out.shape = t->shape;
    const int64_t key_dim = d.k_heads * d.k_dim, value_dim = d.v_heads * d.v_dim;
    const int64_t hidden = h.require_int({"hidden_size"});
    auto& m = out.remap;
    switch (kind) {
        case Qwen35Name::Plain: break;
        case Qwen35Name::PlusOne:
            m.src_rows = t->shape.size() == 1 ? 1 : t->shape[0];
            m.op = ValueOp::AddOne;
            break;
        case Qwen35Name::QkvRows: {
            require(t, {2 * key_dim + value_dim, hidden});
            m.src_rows = t->shape[0];
            for (int64_t r = 0; r < 2 * key_dim; ++r) m.row_map.push_back(r);
            for (int64_t r : tiled_v_order(d, d.v_dim)) m.row_map.push_back(2 * key_dim + r);
            break;
        }
        case Qwen35Name::VRows:
            require(t, {value_dim, hidden});
            m.src_rows = value_dim;
            m.row_map = tiled_v_order(d, d.v_dim);
            break;
        case Qwen35Name::HeadRows:
            require(t, {d.v_heads, hidden});
            m.src_rows = d.v_heads;
            m.row_map = tiled_v_order(d, 1);
            break;
        case Qwen35Name::HeadVector:
        case Qwen35Name::NegExpHeads:
            require(t, {d.v_heads});
            m.src_rows = 1;
            m.col_map = tiled_v_order(d, 1);
            if (kind == Qwen35Name::NegExpHeads) m.op = ValueOp::NegExp;
            break;
        case Qwen35Name::Conv: {
            const int64_t channels = 2 * key_dim + value_dim;
            if (t->shape.size() != 3 || t->shape[0] != channels || t->shape[1] != 1)
                throw Error(*t->file + ": tensor '" + t->name + "' has shape " + gguf::shape_text(t->shape) +
                            ", expected [" + std::to_string(channels) + ", 1, kernel]");
            out.shape = {channels, t->shape[2]};  // squeezed
            m.src_rows = channels;
            for (int64_t r = 0; r < 2 * key_dim; ++r) m.row_map.push_back(r);
            for (int64_t r : tiled_v_order(d, d.v_dim)) m.row_map.push_back(2 * key_dim + r);
            break;
        }
        case Qwen35Name::OutCols:
            require(t, {hidden, value_dim});
            m.src_rows = hidden;
            m.col_map = tiled_v_order(d, d.v_dim);
            break;
    }
    return out;
}

// "model.language_model.layers.3.x" and "model.layers.3.x" -> (3, "x"); the embeddings, final norm
// and head keep their names with the language_model part dropped (llama.cpp's filter).
std::string normalized(std::string_view name) {
    std::string s(name);
    const std::string lm = "language_model.";
    if (const size_t at = s.find(lm); at != std::string::npos) s.erase(at, lm.size());
    return s;
}

}  // namespace

void plan_qwen35(const Architecture& arch, const Checkpoint& checkpoint, OutType outtype, TensorPlan& plan) {
    const HfConfig& h = checkpoint.hparams();
    Dims d;
    d.n_layers = h.require_int({"num_hidden_layers"});
    d.n_experts = h.require_int({"num_experts"});
    d.k_heads = h.require_int({"linear_num_key_heads"});
    d.v_heads = h.require_int({"linear_num_value_heads"});
    d.k_dim = h.require_int({"linear_key_head_dim"});
    d.v_dim = h.require_int({"linear_value_head_dim"});
    if (d.n_layers <= 0 || d.n_experts <= 0 || d.k_heads <= 0 || d.v_heads <= 0 || d.v_heads % d.k_heads != 0 ||
        d.k_dim <= 0 || d.v_dim <= 0)
        throw Error(h.source() + ": the layer, expert and linear-attention head counts must be positive, "
                                 "linear_num_value_heads a multiple of linear_num_key_heads");
    bool skipped_mtp = false, skipped_vision = false;
    // per-expert checkpoints: layer -> stack -> expert -> tensor, emitted when a layer is complete
    std::map<int64_t, std::map<std::string, std::vector<const SafeTensor*>>> pending;
    std::map<int64_t, int64_t> seen;
    const auto add = [&](PlannedTensor t) {
        t.type = planned_type(t, outtype);
        plan.tensors.push_back(std::move(t));
    };
    for (const SafeTensor* t : checkpoint.tensors()) {
        const std::string name = normalized(t->name);
        if (name.starts_with("mtp.") || name.starts_with("model.mtp.")) {
            skipped_mtp = true;
            continue;
        }
        if (name.starts_with("model.visual.") || name.starts_with("visual.")) {
            skipped_vision = true;
            continue;
        }
        if (name.ends_with(".rotary_emb.inv_freq")) continue;
        if (t->dtype == Dtype::U8) throw Error(*t->file + ": tensor '" + t->name + "' has dtype U8");
        if (name == "model.embed_tokens.weight" || name == "model.norm.weight" || name == "lm_head.weight") {
            PlannedTensor out;
            out.name = name == "model.embed_tokens.weight" ? "token_embd.weight"
                       : name == "lm_head.weight"          ? "output.weight"
                                                           : "output_norm.weight";
            out.parts = {t};
            out.shape = t->shape;
            if (name == "model.norm.weight") out = transformed(t, out.name, Qwen35Name::PlusOne, d, h);
            add(std::move(out));
            continue;
        }
        int64_t layer = 0;
        std::string_view rest;
        if (!split_layer(name, layer, rest))
            throw Error(*t->file + ": cannot map tensor '" + t->name + "' for " + std::string(arch.hf_class));
        if (layer >= d.n_layers)
            throw Error(*t->file + ": tensor '" + t->name + "' is beyond the " + std::to_string(d.n_layers) +
                        " layers of " + h.source());
        const std::string blk = "blk." + std::to_string(layer) + ".";
        if (rest == "mlp.experts.gate_up_proj" || rest == "mlp.experts.down_proj") {
            // transformers' fused experts: gate_up [E, 2 ff, H] splits into gate and up
            if (t->shape.size() != 3 || t->shape[0] != d.n_experts)
                throw Error(*t->file + ": tensor '" + t->name + "' has shape " + gguf::shape_text(t->shape) +
                            ", expected [" + std::to_string(d.n_experts) + ", rows, cols]");
            if (rest.ends_with("down_proj")) {
                PlannedTensor out;
                out.name = blk + "ffn_down_exps.weight";
                out.parts = {t};
                out.shape = t->shape;
                add(std::move(out));
                continue;
            }
            const int64_t ff = t->shape[1] / 2;
            if (t->shape[1] % 2 != 0) throw Error(*t->file + ": tensor '" + t->name + "' has an odd number of gate_up rows");
            for (int half = 0; half < 2; ++half) {
                PlannedTensor out;
                out.name = blk + (half == 0 ? "ffn_gate_exps.weight" : "ffn_up_exps.weight");
                out.parts = {t};
                out.shape = {d.n_experts, ff, t->shape[2]};
                out.remap.src_rows = 2 * ff;
                for (int64_t r = 0; r < ff; ++r) out.remap.row_map.push_back(half * ff + r);
                add(std::move(out));
            }
            continue;
        }
        if (rest.starts_with("mlp.experts.")) {
            // as released: mlp.experts.E.{down,gate,up}_proj.weight, stacked down, gate, up (llama.cpp's order)
            std::string_view e = rest.substr(std::string_view("mlp.experts.").size());
            const size_t dot = e.find('.');
            int64_t expert = 0;
            const std::string_view proj = dot == std::string_view::npos ? "" : e.substr(dot + 1);
            if (dot == std::string_view::npos || !parse_index(e.substr(0, dot), expert) || expert >= d.n_experts ||
                (proj != "down_proj.weight" && proj != "gate_proj.weight" && proj != "up_proj.weight"))
                throw Error(*t->file + ": expert tensor '" + t->name + "' does not follow the Qwen3.5 naming");
            auto& slot = pending[layer][std::string(proj.substr(0, proj.find('.')))];
            slot.resize(static_cast<size_t>(d.n_experts), nullptr);
            slot[static_cast<size_t>(expert)] = t;
            if (++seen[layer] < 3 * d.n_experts) continue;
            for (const char* p : {"down_proj", "gate_proj", "up_proj"}) {
                const auto& parts = pending[layer][p];
                PlannedTensor out;
                out.name = blk + "ffn_" + std::string(p).substr(0, std::string(p).find('_')) + "_exps.weight";
                for (const SafeTensor* part : parts) {
                    if (!part || part->shape != parts.front()->shape || part->shape.size() != 2)
                        throw Error(checkpoint.dir() + ": layer " + std::to_string(layer) + "'s " + p +
                                    " experts are missing or differ in shape");
                }
                out.parts = parts;
                out.shape = {d.n_experts, parts.front()->shape[0], parts.front()->shape[1]};
                add(std::move(out));
            }
            pending.erase(layer);
            continue;
        }
        bool mapped = false;
        for (const Qwen35Name& n : kNames) {
            if (rest != n.hf) continue;
            add(transformed(t, blk + std::string(n.gguf), n.kind, d, h));
            mapped = true;
            break;
        }
        if (!mapped) throw Error(*t->file + ": cannot map tensor '" + t->name + "' for " + std::string(arch.hf_class));
    }
    if (!pending.empty())
        throw Error(checkpoint.dir() + ": layer " + std::to_string(pending.begin()->first) + " has " +
                    std::to_string(seen[pending.begin()->first]) + " of " + std::to_string(3 * d.n_experts) +
                    " expert tensors");
    if (skipped_mtp)
        plan.warnings.push_back("the multi-token-prediction block (mtp.*) is not converted (llama.cpp's --no-mtp)");
    if (skipped_vision) plan.warnings.push_back("the vision tower is not converted (text model only)");
}

}  // namespace convert
