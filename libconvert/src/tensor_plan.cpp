#include "convert/tensor_plan.h"

#include <array>
#include <map>

#include "convert/error.h"
#include "convert/gemma4.h"
#include "convert/rope.h"
#include "qwen35_plan.h"
#include "gguf/text.h"
#include "layer_names.h"

namespace convert {

namespace {

// HF module paths inside a decoder layer and their GGUF names (llama.cpp's tensor_mapping.py).
struct BlockName {
    std::string_view hf;
    std::string_view gguf;
    enum Needs { Always, QkNorm, DenseFfn, MixtralRouter, QwenRouter, NotGptOss, GptOss } needs;
};
constexpr BlockName kBlockNames[] = {
    {"input_layernorm", "attn_norm", BlockName::Always},
    {"self_attn.q_proj", "attn_q", BlockName::Always},
    {"self_attn.k_proj", "attn_k", BlockName::Always},
    {"self_attn.v_proj", "attn_v", BlockName::Always},
    {"self_attn.o_proj", "attn_output", BlockName::Always},
    {"self_attn.q_norm", "attn_q_norm", BlockName::QkNorm},
    {"self_attn.k_norm", "attn_k_norm", BlockName::QkNorm},
    {"post_attention_layernorm", "ffn_norm", BlockName::NotGptOss},
    // gpt-oss: llama.cpp's attn_post_norm (it is the norm in front of the MoE), and the biased router
    {"post_attention_layernorm", "post_attention_norm", BlockName::GptOss},
    {"mlp.router", "ffn_gate_inp", BlockName::GptOss},
    {"mlp.gate_proj", "ffn_gate", BlockName::DenseFfn},
    {"mlp.up_proj", "ffn_up", BlockName::DenseFfn},
    {"mlp.down_proj", "ffn_down", BlockName::DenseFfn},
    {"block_sparse_moe.gate", "ffn_gate_inp", BlockName::MixtralRouter},
    {"mlp.gate", "ffn_gate_inp", BlockName::QwenRouter},
};

bool applies(const Architecture& a, BlockName::Needs n) {
    switch (n) {
        case BlockName::Always: return true;
        case BlockName::QkNorm: return a.qk_norm;
        case BlockName::DenseFfn: return a.dense_ffn;
        case BlockName::MixtralRouter: return a.experts == ExpertLayout::Mixtral;
        case BlockName::QwenRouter: return a.experts == ExpertLayout::Qwen;
        case BlockName::NotGptOss: return a.experts != ExpertLayout::GptOss;
        case BlockName::GptOss: return a.experts == ExpertLayout::GptOss;
    }
    return false;
}

// Tensors llama.cpp drops: buffers some checkpoints save that the model recomputes.
bool is_ignored(std::string_view name) {
    return name.ends_with(".attention.masked_bias") || name.ends_with(".attention.bias") ||
           name.ends_with(".rotary_emb.inv_freq");
}

// One expert's projection: which layer, expert and stacking slot (0..2) it belongs to.
struct ExpertPiece {
    int64_t layer, expert;
    size_t slot;
};

// Output names of the three stacks in stacking order, per layout.
constexpr std::array<std::string_view, 3> kMixtralStacks = {"ffn_gate_exps", "ffn_down_exps", "ffn_up_exps"};
constexpr std::array<std::string_view, 3> kQwenStacks = {"ffn_down_exps", "ffn_gate_exps", "ffn_up_exps"};

// Recognizes an expert weight; `looks_like_expert` is set for names in the experts' namespace
// even when they do not parse, so they can be reported rather than silently mis-mapped.
bool parse_expert(const Architecture& a, std::string_view name, ExpertPiece& p, bool& looks_like_expert) {
    std::string_view marker, rest;
    std::array<std::string_view, 3> projections;
    if (a.experts == ExpertLayout::Mixtral) {
        marker = "block_sparse_moe.experts.";
        projections = {"w1", "w2", "w3"};
    } else if (a.experts == ExpertLayout::Qwen) {
        marker = "mlp.experts.";
        projections = {"down_proj", "gate_proj", "up_proj"};
    } else {
        // gpt-oss's fused experts are planned by plan_gpt_oss_experts, not one tensor per expert
        looks_like_expert = false;
        return false;
    }
    looks_like_expert = name.find(marker) != std::string_view::npos;
    if (!looks_like_expert || !split_layer(name, p.layer, rest) || !rest.starts_with(marker)) return false;
    rest.remove_prefix(marker.size());
    const size_t dot = rest.find('.');
    if (dot == std::string_view::npos || !parse_index(rest.substr(0, dot), p.expert)) return false;
    rest.remove_prefix(dot + 1);
    for (size_t s = 0; s < 3; ++s)
        if (rest.size() == projections[s].size() + 7 && rest.starts_with(projections[s]) && rest.ends_with(".weight")) {
            p.slot = s;
            return true;
        }
    return false;
}

}  // namespace

gguf::GgmlType planned_type(const PlannedTensor& t, OutType outtype) {
    // llama.cpp keeps these in F32 whatever the outtype: most code handling 1-D tensors and norms
    // expects F32, the MoE router and the shared expert's gate are tiny and precision-sensitive, and
    // so are the linear-attention convolution kernels.
    const bool router = t.name.ends_with(".ffn_gate_inp.weight") || t.name.ends_with(".ffn_gate_inp_shexp.weight") ||
                        t.name.ends_with(".ssm_conv1d.weight");
    if (t.shape.size() <= 1 || t.name.ends_with("_norm.weight") || router || !t.name.ends_with(".weight"))
        return gguf::GgmlType::F32;
    gguf::GgmlType type = outtype_tensor_type(outtype);
    // Q8_0 blocks are 32 wide; a row that is not a multiple of that stays F16, as in llama.cpp.
    if (type == gguf::GgmlType::Q8_0 && (t.shape.back() % 32) != 0) type = gguf::GgmlType::F16;
    return type;
}

namespace {

gguf::GgmlType choose_type(const PlannedTensor& t, OutType outtype) { return planned_type(t, outtype); }


}  // namespace

std::vector<int64_t> PlannedTensor::ggml_dims() const { return {shape.rbegin(), shape.rend()}; }

uint64_t PlannedTensor::n_elements() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
}

std::string gguf_tensor_name(const Architecture& arch, std::string_view hf) {
    if (arch.experts == ExpertLayout::GptOss && hf.ends_with(".self_attn.sinks")) {
        // a parameter without .weight in the checkpoint; llama.cpp names it attn_sinks.weight
        int64_t layer;
        std::string_view rest;
        if (split_layer(hf, layer, rest) && rest == "self_attn.sinks") return "blk." + std::to_string(layer) + ".attn_sinks.weight";
        return "";
    }
    std::string_view suffix;
    if (hf.ends_with(".weight")) suffix = ".weight";
    else if (hf.ends_with(".bias")) suffix = ".bias";
    else return "";
    const std::string_view base = hf.substr(0, hf.size() - suffix.size());
    if (base == "model.embed_tokens") return "token_embd" + std::string(suffix);
    if (base == "model.norm") return "output_norm" + std::string(suffix);
    if (base == "lm_head") return "output" + std::string(suffix);
    int64_t layer;
    std::string_view rest;
    if (!split_layer(base, layer, rest)) return "";
    for (const BlockName& b : kBlockNames)
        if (b.hf == rest && applies(arch, b.needs))
            return "blk." + std::to_string(layer) + "." + std::string(b.gguf) + std::string(suffix);
    return "";
}

OutType resolve_auto_outtype(const Checkpoint& checkpoint) {
    for (const SafeTensor* t : checkpoint.tensors()) {
        if (t->shape.size() < 2) continue;
        if (t->dtype == Dtype::BF16) return OutType::BF16;
        if (t->dtype == Dtype::F16) return OutType::F16;
    }
    return OutType::F16;
}

namespace {

struct Counts {
    int64_t n_layers, n_head, n_head_kv, n_experts;
};

Counts read_counts(const Architecture& arch, const HfConfig& h) {
    Counts c;
    c.n_layers = h.require_int({"num_hidden_layers", "n_layers", "n_layer", "num_layers"});
    c.n_head = h.require_int({"num_attention_heads", "n_heads", "n_head"});
    c.n_head_kv = h.find_int({"num_key_value_heads", "n_kv_heads"}).value_or(c.n_head);
    c.n_experts = arch.experts == ExpertLayout::None ? 0 : h.require_int({"num_local_experts", "num_experts"});
    if (c.n_layers <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || (arch.experts != ExpertLayout::None && c.n_experts <= 0))
        throw Error(h.source() + ": layer, head and expert counts must be positive");
    return c;
}

// Llama 3's RoPE scaling is a tensor of per-frequency factors, written first as llama.cpp does.
void add_rope_freqs(const Architecture& arch, const HfConfig& h, const Counts& c, TensorPlan& plan) {
    if (!arch.llama_layout) return;
    const RopeConfig rope = read_rope_config(h);
    if (rope.scaling_type != "llama3") return;
    const int64_t head_dim = h.find_int({"head_dim"}).value_or(h.require_int({"hidden_size"}) / c.n_head);
    PlannedTensor t;
    t.name = "rope_freqs.weight";
    t.values = llama3_rope_factors(rope, head_dim);
    t.shape = {static_cast<int64_t>(t.values.size())};
    plan.tensors.push_back(std::move(t));
}

// Experts of a layer wait here until all 3 x n_experts have been seen; the stacked tensors take the
// position of the last one, where llama.cpp emits them.
class ExpertStacker {
public:
    ExpertStacker(const Architecture& arch, const Counts& c, const HfConfig& h, OutType outtype)
        : c_(c), h_(h), outtype_(outtype), stacks_(arch.experts == ExpertLayout::Mixtral ? kMixtralStacks : kQwenStacks) {}

    void add(const SafeTensor* t, const ExpertPiece& piece, TensorPlan& plan) {
        if (piece.layer >= c_.n_layers || piece.expert >= c_.n_experts)
            throw Error(*t->file + ": expert tensor '" + t->name + "' is outside the " + std::to_string(c_.n_layers) +
                        " layers x " + std::to_string(c_.n_experts) + " experts of " + h_.source());
        PendingLayer& p = pending_[piece.layer];
        auto& slot = p.slots[piece.slot];
        if (slot.empty()) slot.assign(static_cast<size_t>(c_.n_experts), nullptr);
        slot[static_cast<size_t>(piece.expert)] = t;
        if (++p.seen < 3 * c_.n_experts) return;
        for (size_t s = 0; s < 3; ++s) plan.tensors.push_back(stack(piece.layer, s, p.slots[s]));
        pending_.erase(piece.layer);
    }

    // Every layer whose experts started must have finished.
    void check_complete(const Checkpoint& checkpoint) const {
        if (pending_.empty()) return;
        const auto& [layer, p] = *pending_.begin();
        throw Error(checkpoint.dir() + ": layer " + std::to_string(layer) + " has " + std::to_string(p.seen) + " of " +
                    std::to_string(3 * c_.n_experts) + " expert tensors (missing or misnamed experts)");
    }

private:
    struct PendingLayer {
        std::array<std::vector<const SafeTensor*>, 3> slots;
        int64_t seen = 0;
    };

    PlannedTensor stack(int64_t layer, size_t s, const std::vector<const SafeTensor*>& parts) const {
        PlannedTensor out;
        out.name = "blk." + std::to_string(layer) + "." + std::string(stacks_[s]) + ".weight";
        out.parts = parts;
        const SafeTensor* first = out.parts.front();
        for (const SafeTensor* e : out.parts)
            if (e->shape != first->shape || e->shape.size() != 2)
                throw Error(*e->file + ": expert tensor '" + e->name + "' has shape " + gguf::shape_text(e->shape) +
                            ", expected a 2-D shape like '" + first->name + "' " + gguf::shape_text(first->shape));
        out.shape = {c_.n_experts};
        out.shape.insert(out.shape.end(), first->shape.begin(), first->shape.end());
        out.type = choose_type(out, outtype_);
        return out;
    }

    const Counts c_;
    const HfConfig& h_;
    OutType outtype_;
    const std::array<std::string_view, 3>& stacks_;
    std::map<int64_t, PendingLayer> pending_;
};

// A tensor that maps one to one: its GGUF name, checks, and the Q/K head permutation of Llama's layout.
PlannedTensor plan_single(const Architecture& arch, const SafeTensor* t, const Counts& c, const HfConfig& h,
                          OutType outtype) {
    PlannedTensor out;
    out.name = gguf_tensor_name(arch, t->name);
    if (out.name.empty()) throw Error(*t->file + ": cannot map tensor '" + t->name + "' for " + std::string(arch.hf_class));
    if (out.name.starts_with("blk.")) {
        int64_t layer;
        std::string_view rest;
        if (split_layer(t->name, layer, rest) && layer >= c.n_layers)
            throw Error(*t->file + ": tensor '" + t->name + "' is beyond the " + std::to_string(c.n_layers) +
                        " layers of " + h.source());
    }
    out.shape = t->shape;
    out.parts = {t};
    if (t->dtype == Dtype::U8)
        throw Error(*t->file + ": tensor '" + t->name + "' has dtype U8, which is read only as MXFP4 expert blocks");
    if (out.shape.size() > 4)
        throw Error(*t->file + ": tensor '" + t->name + "' has " + std::to_string(out.shape.size()) +
                    " dimensions; GGUF allows 4");
    if (arch.llama_layout && (t->name.ends_with("self_attn.q_proj.weight") || t->name.ends_with("self_attn.q_proj.bias") ||
                              t->name.ends_with("self_attn.k_proj.weight") || t->name.ends_with("self_attn.k_proj.bias"))) {
        // HF stores each head's rotary halves apart; llama.cpp's RoPE wants them interleaved.
        const bool is_k = t->name.find("k_proj") != std::string::npos;
        out.permute_heads = is_k ? c.n_head_kv : c.n_head;
        const int64_t rows = out.shape.empty() ? 1 : out.shape[0];
        if (rows % (2 * out.permute_heads) != 0)
            throw Error(*t->file + ": tensor '" + t->name + "' has " + std::to_string(rows) +
                        " rows, not a multiple of 2 x " + std::to_string(out.permute_heads) + " heads");
    }
    out.type = choose_type(out, outtype);
    return out;
}

// gpt-oss's expert tensors under model.layers.N.mlp.experts.: what follows the prefix, or "".
std::string_view gpt_oss_expert_part(std::string_view name, int64_t& layer) {
    constexpr std::string_view marker = "mlp.experts.";
    std::string_view rest;
    if (!split_layer(name, layer, rest) || !rest.starts_with(marker)) return {};
    return rest.substr(marker.size());
}

void require_shape(const SafeTensor* t, size_t dims, int64_t n_experts, int64_t last) {
    const bool ok = t->shape.size() == dims && t->shape[0] == n_experts && (last == 0 || t->shape.back() == last);
    if (!ok)
        throw Error(*t->file + ": tensor '" + t->name + "' has shape " + gguf::shape_text(t->shape) + ", expected " +
                    std::to_string(dims) + " dimensions starting with the " + std::to_string(n_experts) + " experts" +
                    (last ? " and ending with " + std::to_string(last) : ""));
}

// gpt-oss in llama.cpp's order: first the MXFP4 expert matrices (its converter writes them before
// any other tensor, each where its scales come: ffn_down_exps, then ffn_gate_exps and ffn_up_exps
// from the interleaved gate_up rows), then every other tensor, the gate_up bias split into its
// even (gate) and odd (up) columns.
void plan_gpt_oss(const Architecture& arch, const Checkpoint& checkpoint, const Counts& c, OutType outtype,
                  TensorPlan& plan) {
    const HfConfig& h = checkpoint.hparams();
    std::map<int64_t, std::map<std::string, const SafeTensor*>> blocks;  // layer -> projection -> blocks
    std::map<int64_t, int> emitted;
    const auto expert_name = [](int64_t layer, std::string_view stack, std::string_view suffix) {
        return "blk." + std::to_string(layer) + "." + std::string(stack) + std::string(suffix);
    };
    for (const SafeTensor* t : checkpoint.tensors()) {
        int64_t layer = 0;
        const std::string_view part = gpt_oss_expert_part(t->name, layer);
        if (part.empty()) continue;
        if (layer >= c.n_layers)
            throw Error(*t->file + ": tensor '" + t->name + "' is beyond the " + std::to_string(c.n_layers) +
                        " layers of " + h.source());
        const bool is_blocks = part.ends_with("_blocks"), is_scales = part.ends_with("_scales");
        if (part.ends_with("_bias")) continue;
        const std::string proj(part.substr(0, part.rfind('_')));
        if ((!is_blocks && !is_scales) || (proj != "gate_up_proj" && proj != "down_proj"))
            throw Error(*t->file + ": tensor '" + t->name + "' is not one of gpt-oss's MXFP4 expert tensors "
                        "(checkpoints with dequantized experts are not supported)");
        if (t->dtype != Dtype::U8)
            throw Error(*t->file + ": tensor '" + t->name + "' must be U8 (MXFP4 " + (is_blocks ? "blocks" : "scales") + ")");
        if (is_blocks) {
            require_shape(t, 4, c.n_experts, 16);
            blocks[layer][proj] = t;
            continue;
        }
        const auto it = blocks[layer].find(proj);
        if (it == blocks[layer].end())
            throw Error(*t->file + ": tensor '" + t->name + "' comes without its " + proj + "_blocks");
        const SafeTensor* b = it->second;
        require_shape(t, 3, c.n_experts, 0);
        if (t->shape[1] != b->shape[1] || t->shape[2] != b->shape[2])
            throw Error(*t->file + ": tensor '" + t->name + "' has shape " + gguf::shape_text(t->shape) +
                        ", which does not match its blocks " + gguf::shape_text(b->shape));
        const int64_t rows = b->shape[1], cols = b->shape[2] * 32;
        const auto add = [&](std::string_view stack, int64_t step, int64_t offset) {
            PlannedTensor out;
            out.name = expert_name(layer, stack, ".weight");
            out.type = gguf::GgmlType::MXFP4;
            out.shape = {c.n_experts, rows / step, cols};
            out.mxfp4 = {b, t, step, offset};
            plan.tensors.push_back(std::move(out));
        };
        if (proj == "down_proj") {
            add("ffn_down_exps", 1, 0);
        } else {
            if (rows % 2 != 0)
                throw Error(*b->file + ": tensor '" + b->name + "' has an odd number of gate_up rows (" +
                            std::to_string(rows) + ")");
            add("ffn_gate_exps", 2, 0);
            add("ffn_up_exps", 2, 1);
        }
        ++emitted[layer];
    }
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
        if (emitted[layer] != 2)
            throw Error(checkpoint.dir() + ": layer " + std::to_string(layer) +
                        " lacks its MXFP4 experts (gate_up_proj and down_proj blocks and scales)");
    }

    for (const SafeTensor* t : checkpoint.tensors()) {
        if (is_ignored(t->name)) continue;
        int64_t layer = 0;
        const std::string_view part = gpt_oss_expert_part(t->name, layer);
        if (part.empty()) {
            plan.tensors.push_back(plan_single(arch, t, c, h, outtype));
            continue;
        }
        if (!part.ends_with("_bias")) continue;  // blocks and scales, planned above
        if (t->dtype == Dtype::U8) throw Error(*t->file + ": tensor '" + t->name + "' must be a float bias");
        const auto bias = [&](std::string_view stack, int64_t step, int64_t offset) {
            PlannedTensor out;
            out.name = expert_name(layer, stack, ".bias");
            out.type = gguf::GgmlType::F32;
            out.shape = {c.n_experts, t->shape[1] / step};
            out.parts = {t};
            out.inner_step = step;
            out.inner_offset = offset;
            plan.tensors.push_back(std::move(out));
        };
        if (part == "down_proj_bias") {
            require_shape(t, 2, c.n_experts, 0);
            bias("ffn_down_exps", 1, 0);
        } else if (part == "gate_up_proj_bias") {
            require_shape(t, 2, c.n_experts, 0);
            if (t->shape[1] % 2 != 0)
                throw Error(*t->file + ": tensor '" + t->name + "' has an odd number of gate_up columns");
            bias("ffn_gate_exps", 2, 0);
            bias("ffn_up_exps", 2, 1);
        } else {
            throw Error(*t->file + ": cannot map tensor '" + t->name + "' for " + std::string(arch.hf_class));
        }
    }
}

}  // namespace

TensorPlan plan_tensors(const Architecture& arch, const Checkpoint& checkpoint, OutType outtype) {
    const HfConfig& h = checkpoint.hparams();
    TensorPlan plan;
    if (arch.experts == ExpertLayout::Gemma4) {  // experts optional (dense and assistant models)
        plan_gemma4(arch, checkpoint, outtype, plan);
        return plan;
    }
    if (arch.experts == ExpertLayout::Qwen35) {
        plan_qwen35(arch, checkpoint, outtype, plan);
        return plan;
    }
    const Counts counts = read_counts(arch, h);
    if (arch.experts == ExpertLayout::GptOss) {
        plan_gpt_oss(arch, checkpoint, counts, outtype, plan);
        return plan;
    }
    add_rope_freqs(arch, h, counts, plan);
    ExpertStacker experts(arch, counts, h, outtype);
    for (const SafeTensor* t : checkpoint.tensors()) {
        if (is_ignored(t->name)) continue;
        ExpertPiece piece;
        bool looks_like_expert = false;
        if (parse_expert(arch, t->name, piece, looks_like_expert)) {
            experts.add(t, piece, plan);
        } else if (looks_like_expert) {
            throw Error(*t->file + ": expert tensor '" + t->name + "' does not follow the " + std::string(arch.hf_class) +
                        " naming");
        } else {
            plan.tensors.push_back(plan_single(arch, t, counts, h, outtype));
        }
    }
    experts.check_complete(checkpoint);
    return plan;
}

}  // namespace convert
