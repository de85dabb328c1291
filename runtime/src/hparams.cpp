#include "runtime/hparams.h"

#include <optional>
#include <vector>

#include "gguf/arch_keys.h"
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

private:
    uint32_t checked32(const char* suffix, uint64_t v) const {
        if (v > UINT32_MAX) throw Error("metadata " + key(suffix) + " = " + std::to_string(v) + " is out of range");
        return static_cast<uint32_t>(v);
    }
    gguf::ArchKeys keys_;
};

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
        throw Error("unsupported architecture '" + hp.arch_name + "' (supported: llama, qwen2, qwen3, qwen3moe)");
    }
    hp.arch = entry->arch;
    hp.rope_mode = entry->rope;

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
    // llama.cpp's graphs for these architectures rotate the whole head
    if (hp.n_rot != hp.head_dim_k || hp.n_rot % 2 != 0) {
        throw Error("metadata " + r.key("rope.dimension_count") + " = " + std::to_string(hp.n_rot) +
                    ", expected the head size " + std::to_string(hp.head_dim_k));
    }

    const auto eps = r.f64("attention.layer_norm_rms_epsilon");
    if (!eps) throw Error("metadata key " + r.key("attention.layer_norm_rms_epsilon") + " is missing");
    hp.rms_eps = static_cast<float>(*eps);
    hp.rope_freq_base = static_cast<float>(r.f64("rope.freq_base").value_or(10000.0));

    const std::string scaling_key = r.key("rope.scaling.type");
    const std::string scaling = meta.get_string_or(scaling_key, "linear");
    if (scaling != "linear" && scaling != "none") {
        throw Error("metadata " + scaling_key + " = '" + scaling + "' is not supported (linear or none)");
    }
    double factor = r.f64("rope.scaling.factor").value_or(0.0);
    if (factor == 0.0) factor = r.f64("rope.scale_linear").value_or(0.0);
    hp.rope_freq_scale = factor == 0.0 ? 1.0f : static_cast<float>(1.0 / factor);

    if (hp.n_expert > 0) {
        if (hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert) {
            throw Error("metadata " + r.key("expert_used_count") + " = " + std::to_string(hp.n_expert_used) +
                        " must be in 1.." + std::to_string(hp.n_expert));
        }
        // as llama.cpp: qwen3moe states the expert width (else n_ff / n_expert_used); mixtral (`llama`)
        // has no such key, its experts are feed_forward_length wide whatever else the file says
        if (hp.arch == Arch::Qwen3Moe) {
            hp.n_ff_exp = r.u32_or("expert_feed_forward_length", 0);
            if (hp.n_ff_exp == 0) hp.n_ff_exp = hp.n_ff / hp.n_expert_used;
        } else {
            hp.n_ff_exp = hp.n_ff;
        }
        if (hp.n_ff_exp == 0) throw Error("metadata: the expert FFN width is 0");
        if (const gguf::Value* v = meta.find(r.key("expert_weights_norm"))) hp.expert_weights_norm = v->as_bool();
        hp.expert_weights_scale = static_cast<float>(r.f64("expert_weights_scale").value_or(0.0));
    } else {
        if (hp.n_expert_used != 0) throw Error("metadata: expert_used_count without expert_count");
        if (hp.arch == Arch::Qwen3Moe) throw Error("metadata key " + r.key("expert_count") + " is missing");
        if (hp.n_ff == 0) throw Error("metadata key " + r.key("feed_forward_length") + " is missing or 0");
    }
    return hp;
}

}  // namespace runtime
