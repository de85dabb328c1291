// The mixture rules: which type each tensor gets under a recipe. They reproduce llama.cpp's
// choices (src/llama-quant.cpp) so that a recipe means the same file here and there, including
// its quirks: attention-V tensors are ranked by a running count, FFN tensors by layer, and the
// output head is judged by the base type's block size.
#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <regex>

#include "quant/recipe.h"

namespace quant {

namespace {

using T = GgmlType;
using F = FileType;

// A tensor's job, from its GGUF name (llama.cpp's names are the same for every architecture).
enum class Role {
    TokenEmbedding, Output,
    AttnQ, AttnK, AttnV, AttnQKV, AttnKVB, AttnOutput,
    FfnUp, FfnGate, FfnDown,
    Other,
};

Role role_of(std::string_view name) {
    if (name == "output.weight") return Role::Output;
    if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Role::TokenEmbedding;
    // Checked in this order: "ffn_gate" must not claim what a more specific pattern names.
    static constexpr std::pair<std::string_view, Role> kPatterns[] = {
        {"attn_qkv.weight", Role::AttnQKV}, {"attn_kv_b.weight", Role::AttnKVB},
        {"attn_v.weight", Role::AttnV},     {"attn_k.weight", Role::AttnK},
        {"attn_q.weight", Role::AttnQ},     {"attn_output.weight", Role::AttnOutput},
        {"ffn_up", Role::FfnUp},            {"ffn_gate", Role::FfnGate},
        {"ffn_down", Role::FfnDown},
    };
    for (const auto& [pattern, role] : kPatterns) {
        if (name.find(pattern) != std::string_view::npos) return role;
    }
    return Role::Other;
}

// The value projections (alone or fused): the tensors most sensitive to quantization.
bool is_value_like(Role r) { return r == Role::AttnV || r == Role::AttnQKV || r == Role::AttnKVB; }
bool is_ffn(Role r) { return r == Role::FfnUp || r == Role::FfnGate || r == Role::FfnDown; }

// ggml's dimension count: trailing dimensions of 1 do not count.
int n_dims(const gguf::TensorInfo& t) {
    for (int i = static_cast<int>(t.dims.size()) - 1; i >= 1; --i) {
        if (t.dims[static_cast<size_t>(i)] > 1) return i + 1;
    }
    return 1;
}

int64_t n_matrices(const gguf::TensorInfo& t) {
    int64_t n = 1;
    for (size_t i = 2; i < t.dims.size(); ++i) n *= t.dims[i];
    return n;
}

// Weights a recipe may change. Everything else (biases, norms, routers, small or
// position-like tables) is copied as it is, because quantizing it saves little and costs accuracy.
bool recipe_applies(const gguf::TensorInfo& t) {
    if (n_dims(t) < 2) return false;
    const std::string_view name = t.name;
    if (!name.ends_with("weight")) return false;
    if (name == "position_embd.weight" || name == "token_types.weight") return false;
    static constexpr std::string_view kKeep[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
        "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
        "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
        "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
        "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
        "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
        "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    };
    for (std::string_view k : kKeep) {
        if (name.find(k) != std::string_view::npos) return false;
    }
    return true;
}

// The layer index of "blk.N.<...>", if the name has one.
std::optional<int> layer_of(std::string_view name) {
    if (!name.starts_with("blk.")) return std::nullopt;
    const std::string digits(name.substr(4));
    char* end = nullptr;
    const long v = std::strtol(digits.c_str(), &end, 10);
    if (end == digits.c_str()) return std::nullopt;
    return static_cast<int>(v);
}

bool one_of(F ft, std::initializer_list<F> set) { return std::find(set.begin(), set.end(), ft) != set.end(); }

uint32_t block_size(T type) { return gguf::type_traits(type).block_size; }

// The type to use when a row does not split into whole blocks of `type`: the nearest type with
// 32-element blocks. None for types that already have small blocks.
std::optional<T> smaller_block_type(T type) {
    switch (type) {
        case T::IQ1_S: case T::IQ1_M: case T::IQ2_XXS: case T::IQ2_XS: case T::IQ2_S:
        case T::IQ3_XXS: case T::IQ3_S: case T::IQ4_XS:
            return T::IQ4_NL;
        case T::Q2_K: case T::Q3_K: case T::TQ1_0: case T::TQ2_0:
            return T::Q4_0;
        case T::Q4_K: return T::Q5_0;
        case T::Q5_K: return T::Q5_1;
        case T::Q6_K: return T::Q8_0;
        default: return std::nullopt;
    }
}

// The quantizers for these produce garbage without importance data (ggml refuses them).
bool needs_imatrix(const std::string& name, T type, F ft) {
    const Role r = role_of(name);
    if (r == Role::TokenEmbedding || r == Role::Output) return false;
    switch (type) {
        case T::IQ3_XXS: case T::IQ2_XXS: case T::IQ2_XS: case T::IQ2_S: case T::IQ1_M: case T::IQ1_S:
            return true;
        case T::Q2_K:
            return ft == F::MOSTLY_Q2_K_S;
        default:
            return false;
    }
}

std::string type_str(T t) { return std::string(gguf::type_name(t)); }

// The stateful part: llama.cpp ranks value projections and FFN tensors by counting them as they
// come (in quantization_order), so one object walks the tensors in that order.
class Mixture {
public:
    Mixture(const Recipe& recipe, const ModelFacts& model, const RecipeOptions& options,
            std::span<const gguf::TensorInfo> tensors)
        : ft_(recipe.file_type), m_(model), opt_(options) {
        for (const auto& t : tensors) {
            const Role r = role_of(t.name);
            if (is_value_like(r)) ++n_value_;
            if (r == Role::Output) tied_embeddings_ = false;
        }
    }

    bool tied_embeddings() const { return tied_embeddings_; }

    T choose(const gguf::TensorInfo& t, Role role, T base);

private:
    // Layers at the ends and every third one between get more bits.
    static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

    // An FFN tensor's layer: counted for dense models; parsed from the name for MoE models,
    // whose expert tensors need not come one per layer.
    int ffn_layer(const gguf::TensorInfo& t, int counter) const {
        if (m_.n_expert <= 1) return counter;
        const auto layer = layer_of(t.name);
        if (!layer) throw Error("cannot tell the layer of MoE tensor '" + t.name + "' (expected blk.N.)");
        if (*layer < 0 || *layer >= static_cast<int>(m_.n_layer)) {
            throw Error("tensor '" + t.name + "' names layer " + std::to_string(*layer) + " but the model has " +
                        std::to_string(m_.n_layer));
        }
        return *layer;
    }

    T output_head(const gguf::TensorInfo& t, T base) const;
    T very_low_bit(Role role, T type);
    T value(T type);
    T ffn_down(const gguf::TensorInfo& t, T type);
    T attn_output(T type) const;

    F ft_;
    const ModelFacts& m_;
    const RecipeOptions& opt_;
    bool tied_embeddings_ = true;
    int n_value_ = 0;
    int i_value_ = 0;
    int i_ffn_down_ = 0;
    int i_ffn_gate_ = 0;
    int i_ffn_up_ = 0;
};

T Mixture::output_head(const gguf::TensorInfo& t, T base) const {
    if (opt_.output_tensor_type) return *opt_.output_tensor_type;
    if (ft_ == F::MOSTLY_MXFP4_MOE) return T::Q8_0;
    if (m_.falcon_rules() || t.dims[0] % block_size(base) != 0) return T::Q8_0;
    if (one_of(ft_, {F::MOSTLY_IQ2_XXS, F::MOSTLY_IQ2_XS, F::MOSTLY_IQ3_XXS, F::MOSTLY_IQ1_S, F::MOSTLY_IQ2_S,
                     F::MOSTLY_IQ2_M, F::MOSTLY_IQ1_M})) {
        return T::Q5_K;
    }
    return base == T::Q8_0 ? base : T::Q6_K;
}

// IQ1/IQ2 recipes: protect what breaks first at under 2.5 bits.
T Mixture::very_low_bit(Role role, T type) {
    const bool iq2_sm = one_of(ft_, {F::MOSTLY_IQ2_S, F::MOSTLY_IQ2_M});
    if (is_value_like(role)) {
        type = (m_.gqa() >= 4 || m_.n_expert >= 4) ? T::Q4_K : iq2_sm ? T::IQ3_S : T::Q2_K;
        ++i_value_;
    } else if (m_.n_expert == 8 && role == Role::AttnK) {
        type = T::Q4_K;
    } else if (role == Role::FfnDown) {
        if (i_ffn_down_ < static_cast<int>(m_.n_layer) / 8) type = iq2_sm ? T::IQ3_S : T::Q2_K;
        ++i_ffn_down_;
    } else if (role == Role::AttnOutput) {
        if (m_.n_expert == 8) type = T::Q5_K;
        else if (one_of(ft_, {F::MOSTLY_IQ1_S, F::MOSTLY_IQ1_M})) type = T::IQ2_XXS;
        else if (iq2_sm) type = T::IQ3_S;
    }
    return type;
}

T Mixture::value(T type) {
    const bool gqa4 = m_.gqa() >= 4;
    switch (ft_) {
        case F::MOSTLY_Q2_K: type = gqa4 ? T::Q4_K : T::Q3_K; break;
        case F::MOSTLY_Q2_K_S: if (gqa4) type = T::Q4_K; break;
        case F::MOSTLY_IQ3_XXS: type = gqa4 ? T::Q4_K : opt_.have_imatrix ? T::IQ3_XXS : T::IQ3_S; break;
        case F::MOSTLY_IQ3_XS:
        case F::MOSTLY_IQ3_S: if (gqa4) type = T::Q4_K; break;
        case F::MOSTLY_IQ3_M: type = T::Q4_K; break;
        case F::MOSTLY_Q3_K_M: type = i_value_ < 2 ? T::Q5_K : T::Q4_K; break;
        case F::MOSTLY_Q3_K_L: type = T::Q5_K; break;
        case F::MOSTLY_IQ4_NL:
        case F::MOSTLY_IQ4_XS: if (gqa4) type = T::Q5_K; break;
        case F::MOSTLY_Q4_K_M:
        case F::MOSTLY_Q5_K_M: if (more_bits(i_value_, n_value_)) type = T::Q6_K; break;
        case F::MOSTLY_Q4_K_S: if (i_value_ < 4) type = T::Q5_K; break;
        default: break;
    }
    // In 70B-class models eight query heads share each V, so V is small and cheap to keep well.
    if (m_.is_70b_class() && (type == T::Q3_K || type == T::Q4_K)) type = T::Q5_K;
    // Mixtral-style 8-expert models: attention is a small share of the weights.
    if (m_.n_expert == 8) type = T::Q8_0;
    ++i_value_;
    return type;
}

T Mixture::ffn_down(const gguf::TensorInfo& t, T type) {
    const int i = ffn_layer(t, i_ffn_down_);
    const int n = static_cast<int>(m_.n_layer);
    const bool falcon = m_.falcon_rules();
    switch (ft_) {
        case F::MOSTLY_Q2_K: type = T::Q3_K; break;
        case F::MOSTLY_Q2_K_S: if (i < n / 8) type = T::Q4_K; break;
        case F::MOSTLY_IQ3_XXS: if (!opt_.have_imatrix) type = i < n / 8 ? T::Q4_K : T::Q3_K; break;
        case F::MOSTLY_Q3_K_M:
            type = i < n / 16 ? T::Q5_K : (!falcon || more_bits(i, n)) ? T::Q4_K : T::Q3_K;
            break;
        case F::MOSTLY_IQ3_M:
            if (i < n / 8 || (m_.n_expert == 8 && more_bits(i, n))) type = T::Q4_K;
            break;
        case F::MOSTLY_Q3_K_L: type = falcon ? T::Q4_K : T::Q5_K; break;
        case F::MOSTLY_Q4_K_M:
            if (falcon) type = i < n / 16 ? T::Q6_K : more_bits(i, n) ? T::Q5_K : T::Q4_K;
            else if (more_bits(i, n)) type = T::Q6_K;
            break;
        case F::MOSTLY_IQ4_NL:
        case F::MOSTLY_IQ4_XS: if (i < n / 8 && !opt_.have_imatrix) type = T::Q5_K; break;
        case F::MOSTLY_Q5_K_M: if (more_bits(i, n)) type = T::Q6_K; break;
        case F::MOSTLY_Q4_K_S: if (!falcon && i < n / 8) type = T::Q5_K; break;
        // The first ffn_down layers can go badly wrong in Q4_0/Q5_0 even with an imatrix; the
        // rule is tied to the imatrix so files made without one stay as they always were.
        case F::MOSTLY_Q4_0: if (opt_.have_imatrix && i < n / 8) type = T::Q4_1; break;
        case F::MOSTLY_Q5_0: if (opt_.have_imatrix && i < n / 8) type = T::Q5_1; break;
        default: break;
    }
    ++i_ffn_down_;
    return type;
}

T Mixture::attn_output(T type) const {
    if (m_.falcon_rules()) return ft_ == F::MOSTLY_Q3_K_L ? T::Q4_K : type;
    if (m_.n_expert == 8) {
        return one_of(ft_, {F::MOSTLY_Q2_K, F::MOSTLY_IQ3_XS, F::MOSTLY_IQ3_XXS, F::MOSTLY_Q3_K_S, F::MOSTLY_Q3_K_M,
                            F::MOSTLY_IQ4_NL, F::MOSTLY_Q4_K_S, F::MOSTLY_Q4_K_M, F::MOSTLY_IQ3_S, F::MOSTLY_IQ3_M,
                            F::MOSTLY_IQ4_XS})
                   ? T::Q5_K
                   : type;
    }
    switch (ft_) {
        case F::MOSTLY_Q2_K: return T::Q3_K;
        case F::MOSTLY_IQ3_XXS: return T::IQ3_S;
        case F::MOSTLY_Q3_K_M: return T::Q4_K;
        case F::MOSTLY_Q3_K_L: return T::Q5_K;
        case F::MOSTLY_IQ3_M: return T::Q4_K;
        default: return type;
    }
}

T Mixture::choose(const gguf::TensorInfo& t, Role role, T base) {
    if (role == Role::Output || (tied_embeddings_ && role == Role::TokenEmbedding)) return output_head(t, base);
    if (ft_ == F::MOSTLY_MXFP4_MOE) {
        // Stacked 3-D tensors are the experts, except where the architecture stacks attention too.
        const bool experts = n_matrices(t) > 1 && (!m_.stacks_attention() || is_ffn(role));
        return experts ? T::MXFP4 : T::Q8_0;
    }
    if (role == Role::TokenEmbedding) {
        if (one_of(ft_, {F::MOSTLY_IQ2_XXS, F::MOSTLY_IQ2_XS, F::MOSTLY_IQ1_S, F::MOSTLY_IQ1_M})) return T::Q2_K;
        if (one_of(ft_, {F::MOSTLY_IQ2_S, F::MOSTLY_IQ2_M, F::MOSTLY_IQ3_XXS})) return T::IQ3_S;
        if (one_of(ft_, {F::MOSTLY_TQ1_0, F::MOSTLY_TQ2_0})) return T::Q4_K;
        return base;
    }
    if (one_of(ft_, {F::MOSTLY_IQ2_XXS, F::MOSTLY_IQ2_XS, F::MOSTLY_IQ1_S, F::MOSTLY_IQ2_S, F::MOSTLY_IQ2_M,
                     F::MOSTLY_IQ1_M})) {
        return very_low_bit(role, base);
    }
    switch (role) {
        case Role::AttnV: case Role::AttnQKV: case Role::AttnKVB:
            return value(base);
        case Role::AttnK:
            if (m_.n_expert == 8) return T::Q8_0;
            if (ft_ == F::MOSTLY_IQ3_XS) return T::IQ3_XXS;
            if (ft_ == F::MOSTLY_IQ3_XXS) return T::IQ2_S;
            return base;
        case Role::AttnQ:
            if (ft_ == F::MOSTLY_IQ3_XS) return T::IQ3_XXS;
            if (ft_ == F::MOSTLY_IQ3_XXS) return T::IQ2_S;
            return base;
        case Role::FfnDown:
            return ffn_down(t, base);
        case Role::AttnOutput:
            return attn_output(base);
        case Role::FfnGate:
        case Role::FfnUp: {
            int& counter = role == Role::FfnGate ? i_ffn_gate_ : i_ffn_up_;
            const int i = ffn_layer(t, counter);
            const int n = static_cast<int>(m_.n_layer);
            ++counter;
            // IQ3_XS spends fewer bits on the middle layers' gate and up projections.
            return ft_ == F::MOSTLY_IQ3_XS && i >= n / 8 && i < 7 * n / 8 ? T::IQ3_XXS : base;
        }
        default:
            return base;
    }
}

void require_rows_fit(const gguf::TensorInfo& t, T type, const char* why) {
    if (t.dims[0] % block_size(type) != 0) {
        throw Error("tensor '" + t.name + "': " + why + " " + type_str(type) + " needs rows that are a multiple of " +
                    std::to_string(block_size(type)) + " but its rows have " + std::to_string(t.dims[0]) +
                    " elements");
    }
}

}  // namespace

std::vector<size_t> quantization_order(std::span<const gguf::TensorInfo> tensors) {
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int la = layer_of(tensors[a].name).value_or(-1);
        const int lb = layer_of(tensors[b].name).value_or(-1);
        if (la != lb) return la < lb;
        return tensors[a].name < tensors[b].name;
    });
    return order;
}

std::vector<TypeChoice> choose_types(const Recipe& recipe, const ModelFacts& model, const RecipeOptions& options,
                                     std::span<const gguf::TensorInfo> tensors) {
    // A recipe's presets (Q4_K_L) act exactly like the options, which win over them.
    RecipeOptions opt = options;
    if (!opt.token_embedding_type) opt.token_embedding_type = recipe.token_embedding_type;
    if (!opt.output_tensor_type) opt.output_tensor_type = recipe.output_type;

    std::vector<std::pair<std::regex, T>> overrides;
    for (const auto& o : opt.overrides) {
        try {
            overrides.emplace_back(std::regex(o.pattern), o.type);
        } catch (const std::regex_error& e) {
            throw Error("bad --tensor-type pattern '" + o.pattern + "': " + e.what());
        }
    }
    for (auto t : {opt.token_embedding_type, opt.output_tensor_type}) {
        if (t && !is_weight_storage_type(*t)) throw Error("type " + type_str(*t) + " cannot store weights");
    }
    for (const auto& o : opt.overrides) {
        if (!is_weight_storage_type(o.type)) throw Error("type " + type_str(o.type) + " cannot store weights");
    }

    Mixture mixture(recipe, model, opt, tensors);
    const bool base_quantized = gguf::type_traits(recipe.base_type).quantized;
    std::vector<TypeChoice> out;
    out.reserve(tensors.size());
    for (const auto& t : tensors) {
        TypeChoice c;
        c.type = t.type;
        if (!recipe_applies(t)) {
            out.push_back(c);
            continue;
        }
        const Role role = role_of(t.name);
        if (role == Role::TokenEmbedding && opt.token_embedding_type) {
            c.type = *opt.token_embedding_type;
            c.source = ChoiceSource::Option;
            require_rows_fit(t, c.type, "token embedding type");
        } else if (role == Role::Output && opt.output_tensor_type) {
            c.type = *opt.output_tensor_type;
            c.source = ChoiceSource::Option;
            require_rows_fit(t, c.type, "output tensor type");
        } else {
            c.type = recipe.base_type;
            c.source = ChoiceSource::Recipe;
            // Float recipes are a plain conversion: llama.cpp applies neither rules nor patterns.
            if (base_quantized) {
                bool matched = false;
                for (const auto& [re, type] : overrides) {
                    if (std::regex_search(t.name, re)) {
                        c.type = type;
                        c.source = ChoiceSource::Override;
                        matched = true;
                        break;
                    }
                }
                if (!matched && !options.pure) c.type = mixture.choose(t, role, recipe.base_type);
                if (t.dims[0] % block_size(c.type) != 0) {
                    const auto smaller = smaller_block_type(c.type);
                    if (!smaller) require_rows_fit(t, c.type, "type");
                    c.fallback_from = c.type;
                    // Rows not even a multiple of 32 (rare): only a float type holds them.
                    c.type = t.dims[0] % block_size(*smaller) == 0 ? *smaller : T::F16;
                }
            }
        }
        c.requires_imatrix = c.type != t.type && needs_imatrix(t.name, c.type, recipe.file_type);
        out.push_back(c);
    }
    return out;
}

}  // namespace quant
