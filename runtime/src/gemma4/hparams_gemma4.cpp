// Gemma 4's hyper-parameters under llama.cpp's keys (as its converter writes them): the full-attention
// layers' head size, KV heads and RoPE under the plain keys, the sliding layers' under the *_swa keys,
// the layer kinds as a bool array, and the KV-head count as a per-layer array.
#include <cmath>
#include <string>

#include "gemma4/gemma4.h"
#include "gguf/arch_keys.h"
#include "gguf/error.h"
#include "runtime/error.h"

namespace runtime {

namespace {

// libgguf's "metadata KEY: WHY" as a runtime::Error.
template <class F>
auto wrap(F f) {
    try {
        return f();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

class Keys {
public:
    explicit Keys(const gguf::Metadata& md) : md_(md), keys_(md) {}
    std::string key(const char* s) const { return keys_.key(s); }
    bool has(const char* s) const { return keys_.find(s) != nullptr; }
    uint32_t u32(const char* s) const {
        const auto v = wrap([&] { return keys_.u64(s); });
        if (!v) throw Error("metadata key " + key(s) + " is missing");
        if (*v > UINT32_MAX) throw Error("metadata " + key(s) + " is out of range");
        return static_cast<uint32_t>(*v);
    }
    uint32_t u32_or(const char* s, uint32_t d) const { return has(s) ? u32(s) : d; }
    float f32_or(const char* s, float d) const {
        const auto v = wrap([&] { return keys_.f64(s); });
        return v ? static_cast<float>(*v) : d;
    }
    std::vector<uint64_t> counts(const char* s) const {
        return wrap([&] { return keys_.counts(s); });
    }
    const gguf::Metadata& md() const { return md_; }

private:
    const gguf::Metadata& md_;
    gguf::ArchKeys keys_;
};

// One value for every layer, or a per-layer array whose values agree (what this runtime runs).
uint32_t uniform(const Keys& k, const char* s, uint32_t n_layer) {
    const std::vector<uint64_t> v = k.counts(s);
    if (v.empty()) throw Error("metadata key " + k.key(s) + " is missing");
    if (v.size() != 1 && v.size() != n_layer) throw Error("metadata " + k.key(s) + " has the wrong number of values");
    for (uint64_t x : v) {
        if (x != v.front()) throw Error("metadata " + k.key(s) + ": per-layer values differ (not supported for gemma4)");
    }
    return static_cast<uint32_t>(v.front());
}

void require_positive(const Keys& k, const char* s, float v) {
    if (!(std::isfinite(v) && v > 0)) throw Error("metadata " + k.key(s) + " must be a finite number > 0");
}

}  // namespace

HParams read_gemma4(const gguf::Metadata& meta, HParams hp) {
    const Keys k(meta);
    Gemma4HParams& g = hp.gemma4;
    const bool assistant = hp.arch == Arch::Gemma4Assistant;
    hp.n_ctx_train = k.u32("context_length");
    hp.n_embd = k.u32("embedding_length");
    hp.n_layer = k.u32("block_count");
    if (hp.n_embd == 0 || hp.n_layer == 0 || hp.n_ctx_train == 0) {
        throw Error("metadata: embedding_length, block_count and context_length must be > 0");
    }
    // double-wide MLPs (E2B/E4B's KV-shared layers) would make this an array of two widths
    hp.n_ff = uniform(k, "feed_forward_length", hp.n_layer);
    hp.n_head = uniform(k, "attention.head_count", hp.n_layer);
    if (hp.n_head == 0 || hp.n_ff == 0) throw Error("metadata: head_count and feed_forward_length must be > 0");

    // the layer kinds: an array of bools, true for sliding-window layers
    const gguf::Value* pat = meta.find(k.key("attention.sliding_window_pattern"));
    if (!pat || pat->type() != gguf::ValueType::Array) {
        throw Error("metadata " + k.key("attention.sliding_window_pattern") + " must be a per-layer bool array");
    }
    const auto& items = pat->as_array().items;
    if (items.size() != hp.n_layer) {
        throw Error("metadata " + k.key("attention.sliding_window_pattern") + " has " + std::to_string(items.size()) +
                    " values for " + std::to_string(hp.n_layer) + " layers");
    }
    for (const auto& v : items) {
        if (v.type() != gguf::ValueType::Bool) throw Error("metadata " + k.key("attention.sliding_window_pattern") + " must hold bools");
        hp.swa_layers.push_back(v.as_bool() ? 1 : 0);
    }
    hp.n_swa = k.u32("attention.sliding_window");
    if (hp.n_swa == 0) throw Error("metadata " + k.key("attention.sliding_window") + " must be > 0");

    g.head_dim_full = k.u32("attention.key_length");
    g.head_dim_swa = k.u32("attention.key_length_swa");
    if (k.u32("attention.value_length") != g.head_dim_full || k.u32("attention.value_length_swa") != g.head_dim_swa) {
        throw Error("metadata: gemma4 needs value_length == key_length (and the same for *_swa)");
    }
    if (g.head_dim_full == 0 || g.head_dim_swa == 0 || g.head_dim_full % 2 || g.head_dim_swa % 2) {
        throw Error("metadata: gemma4 head sizes must be even and > 0");
    }
    // KV heads: one value, or one per layer that agrees within each kind
    const std::vector<uint64_t> kv = k.counts("attention.head_count_kv");
    if (kv.size() != 1 && kv.size() != hp.n_layer) {
        throw Error("metadata " + k.key("attention.head_count_kv") + " must be one value or one per layer");
    }
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const uint32_t n = static_cast<uint32_t>(kv.size() == 1 ? kv[0] : kv[il]);
        uint32_t& slot = hp.is_swa(il) ? g.n_head_kv_swa : g.n_head_kv_full;
        if (n == 0 || hp.n_head % n != 0) {
            throw Error("metadata " + k.key("attention.head_count_kv") + ": " + std::to_string(n) +
                        " KV heads do not divide " + std::to_string(hp.n_head) + " heads");
        }
        if (slot != 0 && slot != n) throw Error("metadata " + k.key("attention.head_count_kv") + " differs between layers of one kind");
        slot = n;
    }
    if (g.n_head_kv_swa == 0) g.n_head_kv_swa = g.n_head_kv_full;
    if (g.n_head_kv_full == 0) g.n_head_kv_full = g.n_head_kv_swa;

    hp.n_rot = k.u32_or("rope.dimension_count", g.head_dim_full);
    g.n_rot_swa = k.u32_or("rope.dimension_count_swa", g.head_dim_swa);
    // llama.cpp's graph rotates whole heads (the full layers' partial rotation is in rope_freqs)
    if (hp.n_rot != g.head_dim_full || g.n_rot_swa != g.head_dim_swa) {
        throw Error("metadata: gemma4 rope.dimension_count(_swa) must equal the head sizes");
    }
    hp.rope_freq_base = k.f32_or("rope.freq_base", 1000000.0f);
    g.rope_freq_base_swa = k.f32_or("rope.freq_base_swa", 10000.0f);
    require_positive(k, "rope.freq_base", hp.rope_freq_base);
    require_positive(k, "rope.freq_base_swa", g.rope_freq_base_swa);
    if (k.has("rope.scaling.type") && meta.get_string_or(k.key("rope.scaling.type"), "none") != "none") {
        throw Error("metadata " + k.key("rope.scaling.type") + " is not supported for gemma4");
    }
    hp.rms_eps = k.f32_or("attention.layer_norm_rms_epsilon", 0.0f);
    require_positive(k, "attention.layer_norm_rms_epsilon", hp.rms_eps);
    g.final_logit_softcap = k.f32_or("final_logit_softcapping", 0.0f);
    if (!std::isfinite(g.final_logit_softcap) || g.final_logit_softcap < 0) {
        throw Error("metadata " + k.key("final_logit_softcapping") + " must be a finite number >= 0");
    }

    // what the 26B-A4B and 31B releases do not use, and this runtime does not run yet
    if (k.u32_or("embedding_length_per_layer_input", 0) != 0) {
        throw Error("metadata " + k.key("embedding_length_per_layer_input") +
                    " > 0: per-layer embeddings (Gemma 4 E2B/E4B) are not supported");
    }
    const uint32_t shared = k.u32_or("attention.shared_kv_layers", 0);
    if (!assistant && shared != 0) {
        throw Error("metadata " + k.key("attention.shared_kv_layers") + " > 0: KV sharing (Gemma 4 E2B/E4B) is not supported");
    }

    // the generic fields describe the widest K row (the KV cache's row), see Gemma4HParams
    const bool full_wider = g.n_head_kv_full * g.head_dim_full > g.n_head_kv_swa * g.head_dim_swa;
    hp.n_head_kv = full_wider ? g.n_head_kv_full : g.n_head_kv_swa;
    hp.head_dim_k = hp.head_dim_v = full_wider ? g.head_dim_full : g.head_dim_swa;

    hp.n_expert = k.u32_or("expert_count", 0);
    hp.n_expert_used = k.u32_or("expert_used_count", 0);
    if (hp.n_expert > 0) {
        if (hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert) {
            throw Error("metadata " + k.key("expert_used_count") + " must be in 1.." + std::to_string(hp.n_expert));
        }
        hp.n_ff_exp = k.u32("expert_feed_forward_length");
        if (hp.n_ff_exp == 0) throw Error("metadata: the expert FFN width is 0");
        hp.expert_weights_norm = true;  // softmax over all experts, top-k renormalised (transformers' router)
    } else if (hp.n_expert_used != 0) {
        throw Error("metadata: expert_used_count without expert_count");
    }

    if (assistant) {
        g.n_embd_backbone = k.u32("embedding_length_out");
        if (g.n_embd_backbone == 0) throw Error("metadata " + k.key("embedding_length_out") + " must be > 0");
        if (shared != hp.n_layer) {
            throw Error("metadata " + k.key("attention.shared_kv_layers") +
                        ": every gemma4-assistant layer reads the target's KV cache");
        }
        if (hp.n_expert != 0) throw Error("metadata: a gemma4-assistant has no experts");
    }
    return hp;
}

}  // namespace runtime
