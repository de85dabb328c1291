#include "convert/model_metadata.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "convert/error.h"
#include "convert/gemma4.h"
#include "convert/rope.h"

namespace convert {

namespace {

bool is_lower_word(std::string_view w) {  // Python's str.islower() for ASCII
    bool cased = false;
    for (char c : w) {
        if (std::isupper(static_cast<unsigned char>(c))) return false;
        if (std::islower(static_cast<unsigned char>(c))) cased = true;
    }
    return cased;
}

// ^(v\d+(?:\.\d+)*|\d.*)$: versions and sizes keep their spelling.
bool is_version_or_number(std::string_view w) {
    if (!w.empty() && std::isdigit(static_cast<unsigned char>(w[0]))) return true;
    if (w.size() < 2 || w[0] != 'v') return false;
    bool digit_run = false;
    for (size_t i = 1; i < w.size(); ++i) {
        if (std::isdigit(static_cast<unsigned char>(w[i]))) {
            digit_run = true;
        } else if (w[i] == '.' && digit_run) {
            digit_run = false;
        } else {
            return false;
        }
    }
    return digit_run;
}

std::string title_case(std::string_view w) {  // Python's str.title() for ASCII
    std::string out;
    bool prev_letter = false;
    for (char c : w) {
        const bool letter = std::isalpha(static_cast<unsigned char>(c));
        out += static_cast<char>(letter ? (prev_letter ? std::tolower(static_cast<unsigned char>(c))
                                                       : std::toupper(static_cast<unsigned char>(c)))
                                        : c);
        prev_letter = letter;
    }
    return out;
}

// gguf-py's model_weight_count_rounded_notation.
std::string rounded_count(uint64_t n) {
    double scaled;
    const char* suffix;
    if (n > 1e12) {
        scaled = static_cast<double>(n) * 1e-12;
        suffix = "T";
    } else if (n > 1e9) {
        scaled = static_cast<double>(n) * 1e-9;
        suffix = "B";
    } else if (n > 1e6) {
        scaled = static_cast<double>(n) * 1e-6;
        suffix = "M";
    } else {
        scaled = static_cast<double>(n) * 1e-3;
        suffix = "K";
    }
    // At least two significant digits: one decimal for "6.8M", none for "68M".
    const int int_digits = static_cast<int>(std::to_string(static_cast<uint64_t>(std::nearbyint(scaled))).size());
    const int decimals = std::max(2 - int_digits, 0);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f%s", decimals, scaled, suffix);
    return buf;
}

}  // namespace

std::string model_title(std::string_view name) {
    std::string out, word;
    const auto flush = [&] {
        if (word.empty()) return;
        if (!out.empty()) out += ' ';
        out += is_lower_word(word) && !is_version_or_number(word) ? title_case(word) : word;
        word.clear();
    };
    for (char c : name) {
        if (c == '-' || std::isspace(static_cast<unsigned char>(c))) flush();
        else word += c;
    }
    flush();
    return out;
}

std::string size_label(const TensorPlan& plan) {
    uint64_t shared = 0, expert = 0, expert_sum = 0, n_expert_tensors = 0;
    for (const PlannedTensor& t : plan.tensors) {
        const uint64_t n = t.n_elements();
        // gguf-py counts only stacks of 3 or more dimensions as experts: a 2-D stack of per-expert
        // bias rows (gpt-oss's ffn_*_exps.bias) is counted whole as shared, as llama.cpp labels it.
        if (t.name.find("_exps.") != std::string::npos && t.shape.size() >= 3) {
            // The expert count is the stack's outer dimension (one further in for biases).
            const bool bias = t.name.find(".bias") != std::string::npos;
            const uint64_t count = static_cast<uint64_t>(t.shape[t.shape.size() - (bias ? 2 : 3)]);
            if (count == 0) continue;
            expert += n / count;
            expert_sum += count;
            ++n_expert_tensors;
        } else {
            shared += n;
        }
    }
    if (n_expert_tensors > 0) return std::to_string(expert_sum / n_expert_tensors) + "x" + rounded_count(shared + expert);
    return rounded_count(shared);
}

void add_general_metadata(gguf::Metadata& m, const Architecture& arch, const std::string& name,
                          const std::string& label) {
    m.set("general.architecture", gguf::Value::string(std::string(arch.name)));
    m.set("general.type", gguf::Value::string("model"));
    m.set("general.name", gguf::Value::string(name));
    m.set("general.size_label", gguf::Value::string(label));
}

void add_hparams_metadata(gguf::Metadata& m, const Architecture& arch, const HfConfig& h, uint32_t file_type,
                          std::vector<std::string>& warnings) {
    const std::string a(arch.name);
    const auto u32 = [&](const std::string& key, int64_t v, std::string_view from) {
        if (v < 0 || v > UINT32_MAX)
            throw Error(h.source() + ": \"" + std::string(from) + "\" = " + std::to_string(v) + " is out of range");
        m.set(a + "." + key, gguf::Value::u32(static_cast<uint32_t>(v)));
    };
    const auto opt_u32 = [&](const std::string& key, std::initializer_list<std::string_view> keys) {
        if (auto v = h.find_int(keys)) u32(key, *v, *keys.begin());
    };
    const auto opt_f32 = [&](const std::string& key, std::initializer_list<std::string_view> keys) {
        if (auto v = h.find_number(keys)) m.set(a + "." + key, gguf::Value::f32(static_cast<float>(*v)));
    };
    if (arch.experts == ExpertLayout::Gemma4) return add_gemma4_hparams(m, arch, h, file_type);
    const RopeConfig rope = read_rope_config(h);

    u32("block_count", h.require_int({"num_hidden_layers", "n_layers", "n_layer", "num_layers"}), "num_hidden_layers");
    opt_u32("context_length", {"max_position_embeddings", "n_ctx", "n_positions", "max_length"});
    u32("embedding_length", h.require_int({"hidden_size", "n_embd", "dim"}), "hidden_size");
    opt_u32("feed_forward_length", {"intermediate_size", "n_inner", "hidden_dim"});
    u32("attention.head_count", h.require_int({"num_attention_heads", "n_heads", "n_head"}), "num_attention_heads");
    opt_u32("attention.head_count_kv", {"num_key_value_heads", "n_kv_heads"});
    const bool scaled = !rope.scaling_type.empty() && rope.scaling_type != "default";
    // llama.cpp writes the scaling before the base (not for the llama layout, handled below)
    const bool yarn = !arch.llama_layout && rope.scaling_type == "yarn" && rope.factor;
    if (yarn) {
        m.set(a + ".rope.scaling.type", gguf::Value::string("yarn"));
        m.set(a + ".rope.scaling.factor", gguf::Value::f32(static_cast<float>(*rope.factor)));
        if (!rope.original_context)
            throw Error(h.source() + ": yarn RoPE scaling without original_max_position_embeddings");
        u32("rope.scaling.original_context_length", *rope.original_context, "original_max_position_embeddings");
        const auto yarn_f32 = [&](const char* key, const std::optional<double>& v) {
            if (v) m.set(a + ".rope.scaling." + key, gguf::Value::f32(static_cast<float>(*v)));
        };
        yarn_f32("yarn_ext_factor", rope.extrapolation_factor);
        yarn_f32("yarn_attn_factor", rope.attention_factor);
        yarn_f32("yarn_beta_fast", rope.beta_fast);
        yarn_f32("yarn_beta_slow", rope.beta_slow);
    }
    // Qwen3.5's mrope sections (text-only use sees one position on every axis), padded to 4 as llama.cpp
    // writes them; where the config has none llama.cpp appends its default [11, 11, 10, 0] last
    std::vector<int32_t> sections;
    if (arch.experts == ExpertLayout::Qwen35) {
        const json::Value* params = h.find({"rope_parameters", "rope_scaling"});
        const json::Value* sec = params && params->is_object() ? params->find("mrope_section") : nullptr;
        if (sec && sec->is_array()) {
            for (const json::Value& v : sec->items()) sections.push_back(static_cast<int32_t>(v.as_int()));
            while (sections.size() < 4) sections.push_back(0);
            sections.resize(4);
            m.set(a + ".rope.dimension_sections", gguf::Value::i32_array(sections));
        }
    }
    if (rope.theta) m.set(a + ".rope.freq_base", gguf::Value::f32(static_cast<float>(*rope.theta)));
    opt_f32("attention.layer_norm_rms_epsilon", {"rms_norm_eps", "norm_eps"});
    opt_f32("attention.layer_norm_epsilon", {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"});
    opt_u32("expert_count", {"num_local_experts", "num_experts"});
    opt_u32("expert_used_count", {"num_experts_per_tok", "num_experts_per_token"});
    if (auto head_dim = h.find_int({"head_dim"})) {
        u32("attention.key_length", *head_dim, "head_dim");
        u32("attention.value_length", *head_dim, "head_dim");
    }
    m.set("general.file_type", gguf::Value::u32(file_type));
    if (arch.llama_layout) {
        u32("vocab_size", h.require_int({"vocab_size"}), "vocab_size");
        const int64_t head_dim = h.find_int({"head_dim"}).value_or(
            h.require_int({"hidden_size"}) / h.require_int({"num_attention_heads"}));
        u32("rope.dimension_count", head_dim, "head_dim");
        if (rope.scaling_type == "linear" && rope.factor) {
            m.set(a + ".rope.scaling.type", gguf::Value::string("linear"));
            m.set(a + ".rope.scaling.factor", gguf::Value::f32(static_cast<float>(*rope.factor)));
        } else if (scaled && rope.scaling_type != "llama3") {
            warnings.push_back("RoPE scaling type \"" + rope.scaling_type + "\" is not carried into the GGUF (as in llama.cpp)");
        }
        return;
    }
    if (arch.experts == ExpertLayout::Qwen) {
        opt_u32("expert_feed_forward_length", {"moe_intermediate_size"});
        opt_u32("expert_shared_feed_forward_length", {"shared_expert_intermediate_size"});
    }
    if (arch.experts == ExpertLayout::Qwen35) {
        opt_u32("expert_feed_forward_length", {"moe_intermediate_size"});
        opt_u32("expert_shared_feed_forward_length", {"shared_expert_intermediate_size"});
        u32("ssm.conv_kernel", h.require_int({"linear_conv_kernel_dim"}), "linear_conv_kernel_dim");
        u32("ssm.state_size", h.require_int({"linear_key_head_dim"}), "linear_key_head_dim");
        u32("ssm.group_count", h.require_int({"linear_num_key_heads"}), "linear_num_key_heads");
        u32("ssm.time_step_rank", h.require_int({"linear_num_value_heads"}), "linear_num_value_heads");
        u32("ssm.inner_size", h.require_int({"linear_value_head_dim"}) * h.require_int({"linear_num_value_heads"}),
            "linear_value_head_dim");
        u32("full_attention_interval", h.find_int({"full_attention_interval"}).value_or(4), "full_attention_interval");
        const int64_t head_dim = h.find_int({"head_dim"}).value_or(h.require_int({"hidden_size"}) /
                                                                   h.require_int({"num_attention_heads"}));
        double partial = 0.25;  // transformers' default for Qwen3.5
        const json::Value* params = h.find({"rope_parameters", "rope_scaling"});
        const json::Value* pf = params && params->is_object() ? params->find("partial_rotary_factor") : nullptr;
        if (pf && pf->is_number()) partial = pf->as_double();
        else if (auto v = h.find_number({"partial_rotary_factor"})) partial = *v;
        u32("rope.dimension_count", static_cast<int64_t>(static_cast<double>(head_dim) * partial), "head_dim");
        if (sections.empty()) m.set(a + ".rope.dimension_sections", gguf::Value::i32_array({11, 11, 10, 0}));
    }
    if (arch.experts == ExpertLayout::GptOss) {
        u32("attention.sliding_window", h.require_int({"sliding_window"}), "sliding_window");
        u32("expert_feed_forward_length", h.require_int({"intermediate_size"}), "intermediate_size");
    }
    if (!yarn && scaled) {
        warnings.push_back("RoPE scaling type \"" + rope.scaling_type + "\" is not carried into the GGUF (as in llama.cpp)");
    }
}

}  // namespace convert
