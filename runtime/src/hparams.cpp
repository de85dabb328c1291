#include "runtime/hparams.h"

#include <cmath>
#include <optional>
#include <vector>

#include "gguf/arch_keys.h"
#include "gemma4/gemma4.h"
#include "gguf/error.h"
#include "runtime/error.h"

namespace runtime {

namespace {

struct ArchEntry {
    const char* name;
    Arch arch;
    RopeMode rope;
};

// rope modes as llama.cpp's llama_model_rope_type assigns them
constexpr ArchEntry kArchs[] = {
    {"llama", Arch::Llama, RopeMode::Adjacent},
    {"qwen2", Arch::Qwen2, RopeMode::Neox},
    {"qwen3", Arch::Qwen3, RopeMode::Neox},
    {"qwen3moe", Arch::Qwen3Moe, RopeMode::Neox},
    {"gpt-oss", Arch::GptOss, RopeMode::Neox},
    {"gemma4", Arch::Gemma4, RopeMode::Neox},
    {"gemma4-assistant", Arch::Gemma4Assistant, RopeMode::Neox},
    {"qwen35moe", Arch::Qwen35Moe, RopeMode::Neox},
};

// libgguf's "metadata KEY: WHY" as a runtime::Error.
template <class F>
auto wrapped(F read) {
    try {
        return read();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

// gguf::ArchKeys (shared with the quantizer's recipes) with the runtime's rules: 32-bit values,
// required keys, per-layer values that must all agree, and runtime::Error for every defect.
class Reader {
public:
    explicit Reader(const gguf::Metadata& meta) : keys_(meta) {}

    std::string key(const char* suffix) const { return keys_.key(suffix); }

    std::optional<uint64_t> u64(const char* suffix) const {
        return wrapped([&] { return keys_.u64(suffix); });
    }
    uint32_t u32(const char* suffix) const {
        auto v = u64(suffix);
        if (!v) throw Error("metadata key " + key(suffix) + " is missing");
        return checked32(suffix, *v);
    }
    uint32_t u32_or(const char* suffix, uint32_t dflt) const {
        auto v = u64(suffix);
        return v ? checked32(suffix, *v) : dflt;
    }
    std::optional<double> f64(const char* suffix) const {
        return wrapped([&] { return keys_.f64(suffix); });
    }
    // A key that llama.cpp allows to be a scalar or a per-layer array; this runtime needs one value
    // for all layers, so a non-uniform array is refused by name.
    std::optional<uint32_t> uniform(const char* suffix) const {
        if (!keys_.find(suffix)) return std::nullopt;
        const std::vector<uint64_t> values = wrapped([&] { return keys_.counts(suffix); });
        if (values.empty()) throw Error("metadata " + key(suffix) + " is an empty array");
        for (uint64_t v : values) {
            if (v != values.front()) throw Error("metadata " + key(suffix) + ": per-layer values differ (not supported)");
        }
        return checked32(suffix, values.front());
    }

    // finite and > 0 (as stored in the runtime's float)
    void require_positive(const char* suffix, float v) const {
        if (!(std::isfinite(v) && v > 0)) {
            throw Error("metadata " + key(suffix) + " = " + std::to_string(v) + " must be a finite number > 0");
        }
    }

private:
    uint32_t checked32(const char* suffix, uint64_t v) const {
        if (v > UINT32_MAX) throw Error("metadata " + key(suffix) + " = " + std::to_string(v) + " is out of range");
        return static_cast<uint32_t>(v);
    }
    gguf::ArchKeys keys_;
};

// YaRN's parameters, as llama.cpp reads them (defaults: beta_fast 32, beta_slow 1, attention factor 1).
void read_yarn(const Reader& r, double factor, HParams& hp) {
    if (!(factor > 1.0)) {
        throw Error("metadata " + r.key("rope.scaling.factor") + " must be > 1 for yarn scaling");
    }
    hp.rope_yarn = true;
    hp.yarn.n_ctx_orig = r.u32("rope.scaling.original_context_length");
    if (hp.yarn.n_ctx_orig == 0) throw Error("metadata " + r.key("rope.scaling.original_context_length") + " must be > 0");
    hp.yarn.beta_fast = static_cast<float>(r.f64("rope.scaling.yarn_beta_fast").value_or(32.0));
    hp.yarn.beta_slow = static_cast<float>(r.f64("rope.scaling.yarn_beta_slow").value_or(1.0));
    hp.yarn.attn_factor = static_cast<float>(r.f64("rope.scaling.yarn_attn_factor").value_or(1.0));
    r.require_positive("rope.scaling.yarn_beta_fast", hp.yarn.beta_fast);
    r.require_positive("rope.scaling.yarn_beta_slow", hp.yarn.beta_slow);
    r.require_positive("rope.scaling.yarn_attn_factor", hp.yarn.attn_factor);
    if (const auto ext = r.f64("rope.scaling.yarn_ext_factor"); ext && *ext != 1.0) {
        throw Error("metadata " + r.key("rope.scaling.yarn_ext_factor") + " other than 1 is not supported");
    }
    // cos and sin are scaled by the attention factor (ggml's and transformers' mscale)
    hp.rope_attn_factor = static_cast<float>(hp.yarn.attn_factor * (1.0 + 0.1 * std::log(factor)));
}

// gpt-oss: every layer MoE with biased experts and router, alternating sliding-window and full
// attention with sinks; the SwiGLU constants are fixed by the architecture (llama.cpp hard-codes
// them too).
void read_gpt_oss(const Reader& r, HParams& hp) {
    hp.n_swa = r.u32("attention.sliding_window");
    if (hp.n_swa == 0) throw Error("metadata " + r.key("attention.sliding_window") + " must be > 0");
    hp.swa_period = 2;
    if (r.u64("attention.sliding_window_pattern")) hp.swa_period = r.u32("attention.sliding_window_pattern");
    hp.attn_sinks = true;
    hp.router_softmax_topk = true;
    hp.expert_weights_norm = false;
    hp.swiglu_alpha = 1.702f;
    hp.swiglu_limit = 7.0f;
    // gpt-oss's config asks for YaRN without rounding (transformers' reference computes it so)
    hp.yarn.truncate = false;
}

// qwen35moe: the linear-attention sizes and the layer pattern, checked as llama.cpp's graph needs them
// (value heads a multiple of key heads, value head size = key head size).
void read_qwen35(const Reader& r, HParams& hp) {
    hp.ssm_d_conv = r.u32("ssm.conv_kernel");
    hp.ssm_d_inner = r.u32("ssm.inner_size");
    hp.ssm_d_state = r.u32("ssm.state_size");
    hp.ssm_n_v_heads = r.u32("ssm.time_step_rank");
    hp.ssm_n_k_heads = r.u32("ssm.group_count");
    hp.full_attn_interval = r.u32_or("full_attention_interval", 4);
    if (hp.ssm_d_conv < 1 || hp.ssm_d_state == 0 || hp.ssm_n_v_heads == 0 || hp.ssm_n_k_heads == 0 ||
        hp.ssm_n_v_heads % hp.ssm_n_k_heads != 0 || hp.ssm_d_inner != hp.ssm_n_v_heads * hp.ssm_d_state) {
        throw Error("metadata: " + r.key("ssm.*") + " sizes are inconsistent (time_step_rank a multiple of "
                    "group_count, inner_size = time_step_rank x state_size)");
    }
    if (hp.full_attn_interval == 0) throw Error("metadata " + r.key("full_attention_interval") + " must be > 0");
    if (r.u64("attention.recurrent_layers")) {
        throw Error("metadata " + r.key("attention.recurrent_layers") + " (a per-layer pattern) is not supported");
    }
    hp.attn_output_gate = true;
    // llama.cpp's converter appends the MTP block (unless --no-mtp): block_count counts it
    hp.n_layer_nextn = r.u32_or("nextn_predict_layers", 0);
    if (hp.n_layer_nextn >= hp.n_layer) {
        throw Error("metadata " + r.key("nextn_predict_layers") + " = " + std::to_string(hp.n_layer_nextn) +
                    " leaves no main blocks of the " + std::to_string(hp.n_layer));
    }
    hp.n_layer -= hp.n_layer_nextn;
}

}  // namespace

HParams HParams::from_metadata(const gguf::Metadata& meta) {
    HParams hp;
    const gguf::Value* arch_value = meta.find("general.architecture");
    if (!arch_value || arch_value->type() != gguf::ValueType::String) {
        throw Error("metadata key general.architecture is missing");
    }
    hp.arch_name = arch_value->as_string();
    const ArchEntry* entry = nullptr;
    for (const auto& e : kArchs) {
        if (hp.arch_name == e.name) entry = &e;
    }
    if (!entry) {
        throw Error("unsupported architecture '" + hp.arch_name +
                    "' (supported: llama, qwen2, qwen3, qwen3moe, gpt-oss, gemma4, gemma4-assistant, qwen35moe)");
    }
    hp.arch = entry->arch;
    hp.rope_mode = entry->rope;
    // two kinds of attention layer with their own shapes: read by its own reader
    if (hp.is_gemma4()) return read_gemma4(meta, std::move(hp));

    const Reader r(meta);
    hp.n_ctx_train = r.u32("context_length");
    hp.n_embd = r.u32("embedding_length");
    hp.n_layer = r.u32("block_count");
    hp.n_expert = r.u32_or("expert_count", 0);
    hp.n_expert_used = r.u32_or("expert_used_count", 0);
    // llama.cpp builds qwen2 and qwen3 blocks with a dense FFN whatever expert_count says (converters
    // copy the key from any config that has one); only llama (mixtral) and qwen3moe route to experts
    if (hp.arch == Arch::Qwen2 || hp.arch == Arch::Qwen3) hp.n_expert = hp.n_expert_used = 0;
    hp.n_ff = r.uniform("feed_forward_length").value_or(0);
    hp.n_head = r.uniform("attention.head_count").value_or(0);
    hp.n_head_kv = r.uniform("attention.head_count_kv").value_or(hp.n_head);
    if (hp.n_embd == 0 || hp.n_layer == 0) throw Error("metadata: embedding_length and block_count must be > 0");
    if (hp.n_head == 0) throw Error("metadata key " + r.key("attention.head_count") + " is missing or 0");
    if (hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0) {
        throw Error("metadata: head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
                    std::to_string(hp.n_head_kv));
    }
    hp.head_dim_k = r.u32_or("attention.key_length", hp.n_embd / hp.n_head);
    hp.head_dim_v = r.u32_or("attention.value_length", hp.n_embd / hp.n_head);
    hp.n_rot = r.u32_or("rope.dimension_count", hp.head_dim_k);
    if (hp.head_dim_k == 0 || hp.head_dim_v == 0) throw Error("metadata: attention key/value length must be > 0");
    // llama.cpp's graphs for these architectures rotate the whole head; qwen35moe rotates a part of it
    const bool partial_ok = hp.arch == Arch::Qwen35Moe && hp.n_rot > 0 && hp.n_rot <= hp.head_dim_k;
    if ((hp.n_rot != hp.head_dim_k && !partial_ok) || hp.n_rot % 2 != 0) {
        throw Error("metadata " + r.key("rope.dimension_count") + " = " + std::to_string(hp.n_rot) +
                    ", expected the head size " + std::to_string(hp.head_dim_k));
    }

    const auto eps = r.f64("attention.layer_norm_rms_epsilon");
    if (!eps) throw Error("metadata key " + r.key("attention.layer_norm_rms_epsilon") + " is missing");
    // Values that make every output NaN or Inf without a single bad weight: refused by name.
    hp.rms_eps = static_cast<float>(*eps);
    r.require_positive("attention.layer_norm_rms_epsilon", hp.rms_eps);
    hp.rope_freq_base = static_cast<float>(r.f64("rope.freq_base").value_or(10000.0));
    r.require_positive("rope.freq_base", hp.rope_freq_base);
    if (hp.n_ctx_train == 0) throw Error("metadata " + r.key("context_length") + " must be > 0");

    const std::string scaling_key = r.key("rope.scaling.type");
    const std::string scaling = meta.get_string_or(scaling_key, "linear");
    // YaRN is implemented for gpt-oss, the one architecture here whose files use it
    const bool yarn_ok = hp.arch == Arch::GptOss;
    if (scaling != "linear" && scaling != "none" && !(scaling == "yarn" && yarn_ok)) {
        throw Error("metadata " + scaling_key + " = '" + scaling + "' is not supported (" +
                    (yarn_ok ? "linear, yarn or none)" : "linear or none)"));
    }
    double factor = r.f64("rope.scaling.factor").value_or(0.0);
    if (factor == 0.0) factor = r.f64("rope.scale_linear").value_or(0.0);
    if (!(std::isfinite(factor) && factor >= 0.0)) {
        throw Error("metadata " + r.key("rope.scaling.factor") + " = " + std::to_string(factor) +
                    " must be a finite number >= 0");
    }
    hp.rope_freq_scale = factor == 0.0 ? 1.0f : static_cast<float>(1.0 / factor);
    if (scaling == "yarn") read_yarn(r, factor, hp);

    if (hp.arch == Arch::GptOss) read_gpt_oss(r, hp);
    if (hp.arch == Arch::Qwen35Moe) read_qwen35(r, hp);

    if (hp.n_expert > 0) {
        if (hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert) {
            throw Error("metadata " + r.key("expert_used_count") + " = " + std::to_string(hp.n_expert_used) +
                        " must be in 1.." + std::to_string(hp.n_expert));
        }
        // as llama.cpp: qwen3moe states the expert width (else n_ff / n_expert_used); mixtral (`llama`)
        // has no such key, its experts are feed_forward_length wide whatever else the file says
        if (hp.arch == Arch::GptOss) {
            hp.n_ff_exp = r.u32("expert_feed_forward_length");
        } else if (hp.arch == Arch::Qwen3Moe || hp.arch == Arch::Qwen35Moe) {
            hp.n_ff_exp = r.u32_or("expert_feed_forward_length", 0);
            if (hp.n_ff_exp == 0) hp.n_ff_exp = hp.n_ff / hp.n_expert_used;
            // llama.cpp: the shared expert is feed_forward_length wide unless stated
            if (hp.arch == Arch::Qwen35Moe) hp.n_ff_shexp = r.u32_or("expert_shared_feed_forward_length", hp.n_ff);
        } else {
            hp.n_ff_exp = hp.n_ff;
        }
        if (hp.n_ff_exp == 0) throw Error("metadata: the expert FFN width is 0");
        if (const gguf::Value* v = meta.find(r.key("expert_weights_norm"))) hp.expert_weights_norm = v->as_bool();
        hp.expert_weights_scale = static_cast<float>(r.f64("expert_weights_scale").value_or(0.0));
        if (!std::isfinite(hp.expert_weights_scale)) {
            throw Error("metadata " + r.key("expert_weights_scale") + " is not finite");
        }
    } else {
        if (hp.n_expert_used != 0) throw Error("metadata: expert_used_count without expert_count");
        if (hp.arch == Arch::Qwen3Moe || hp.arch == Arch::GptOss || hp.arch == Arch::Qwen35Moe) {
            throw Error("metadata key " + r.key("expert_count") + " is missing");
        }
        if (hp.n_ff == 0) throw Error("metadata key " + r.key("feed_forward_length") + " is missing or 0");
    }
    return hp;
}

}  // namespace runtime
