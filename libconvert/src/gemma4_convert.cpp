// Gemma 4 (Gemma4ForCausalLM, Gemma4ForConditionalGeneration's text model) and its assistant draft
// (Gemma4AssistantForCausalLM) as llama.cpp's convert_hf_to_gguf.py writes them (conversion/gemma.py,
// Gemma4Model / Gemma4AssistantModel): tensor names and types, the rope_freqs tensor that leaves the
// full layers' non-proportional dimensions unrotated, the hyper-parameter keys in the order the
// converter's three set_gguf_parameters layers write them (a key written twice keeps its first place
// and its last value), and the tokenizer as LlamaHfVocab reads tokenizer.json with model "gemma4".
#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include "convert/error.h"
#include "convert/gemma4.h"
#include "vocab_loaders.h"
#include "layer_names.h"

namespace fs = std::filesystem;

namespace convert {

namespace {

// The checkpoint name with the multimodal wrapper's prefix removed, or "" for the towers and
// projectors of other modalities (converted into a separate mmproj file by llama.cpp).
std::string text_name(std::string_view name) {
    for (std::string_view skip : {"model.vision_tower.", "model.audio_tower.", "model.embed_vision.", "model.embed_audio.",
                                  "vision_tower.", "audio_tower.", "multi_modal_projector."}) {
        if (name.starts_with(skip)) return "";
    }
    std::string s(name);
    if (const size_t p = s.find("language_model."); p != std::string::npos) s.erase(p, std::string("language_model.").size());
    return s;
}

// Decoder-layer paths and their GGUF names (gguf-py's tensor_mapping for gemma4).
constexpr std::pair<std::string_view, std::string_view> kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    {"pre_feedforward_layernorm_2.weight", "pre_ffw_norm_2.weight"},
    {"post_feedforward_layernorm_1.weight", "post_ffw_norm_1.weight"},
    {"post_feedforward_layernorm_2.weight", "post_ffw_norm_2.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"router.proj.weight", "ffn_gate_inp.weight"},
    {"router.scale", "ffn_gate_inp.scale"},
    {"router.per_expert_scale", "ffn_down_exps.scale"},
    {"experts.gate_up_proj", "ffn_gate_up_exps.weight"},
    {"experts.down_proj", "ffn_down_exps.weight"},
    {"layer_scalar", "layer_output_scale.weight"},
};

std::string gguf_name(std::string_view hf, bool assistant, int64_t n_layers, const std::string& file) {
    if (hf == "model.embed_tokens.weight") return "token_embd.weight";
    if (hf == "model.norm.weight") return "output_norm.weight";
    if (assistant && hf == "pre_projection.weight") return "nextn.pre_projection.weight";
    if (assistant && hf == "post_projection.weight") return "nextn.post_projection.weight";
    constexpr std::string_view prefix = "model.layers.";
    if (hf.starts_with(prefix)) {
        std::string_view rest = hf.substr(prefix.size());
        const size_t dot = rest.find('.');
        int64_t layer = 0;
        if (dot != std::string_view::npos && parse_index(rest.substr(0, dot), layer)) {
            if (layer >= n_layers) {
                throw Error(file + ": tensor '" + std::string(hf) + "' is beyond the " + std::to_string(n_layers) + " layers");
            }
            rest.remove_prefix(dot + 1);
            for (const auto& [h, g] : kLayerNames) {
                if (rest == h) return "blk." + std::to_string(layer) + "." + std::string(g);
            }
        }
    }
    return "";
}

gguf::GgmlType choose_type(const PlannedTensor& t, OutType outtype) {
    // llama.cpp keeps 1-D tensors, norms, the router and every non-.weight tensor in F32
    if (t.shape.size() <= 1 || t.name.ends_with("_norm.weight") || t.name.ends_with(".ffn_gate_inp.weight") ||
        !t.name.ends_with(".weight")) {
        return gguf::GgmlType::F32;
    }
    gguf::GgmlType type = outtype_tensor_type(outtype);
    if (type == gguf::GgmlType::Q8_0 && (t.shape.back() % 32) != 0) type = gguf::GgmlType::F16;
    return type;
}

const json::Value* rope_params(const HfConfig& h, std::string_view kind) {
    const json::Value* rp = h.find({"rope_parameters"});
    return rp && rp->is_object() ? rp->find(kind) : nullptr;
}

double rope_number(const HfConfig& h, std::string_view kind, std::string_view key, double dflt) {
    const json::Value* p = rope_params(h, kind);
    const json::Value* v = p && p->is_object() ? p->find(key) : nullptr;
    return v && v->is_number() ? v->as_double() : dflt;
}

std::vector<bool> sliding_layers(const HfConfig& h, int64_t n_layers) {
    const json::Value* lt = h.find({"layer_types"});
    if (!lt || !lt->is_array() || static_cast<int64_t>(lt->size()) != n_layers) {
        throw Error(h.source() + ": \"layer_types\" must list the " + std::to_string(n_layers) + " layers' kinds");
    }
    std::vector<bool> out;
    for (const json::Value& v : lt->items()) out.push_back(v.as_string() == "sliding_attention");
    return out;
}

}  // namespace

bool is_gemma4_assistant(const Architecture& arch) { return arch.name == "gemma4-assistant"; }

void plan_gemma4(const Architecture& arch, const Checkpoint& checkpoint, OutType outtype, TensorPlan& plan) {
    const HfConfig& h = checkpoint.hparams();
    const bool assistant = is_gemma4_assistant(arch);
    const int64_t n_layers = h.require_int({"num_hidden_layers"});
    if (h.find_int({"hidden_size_per_layer_input"}).value_or(0) != 0) {
        throw Error(h.source() + ": per-layer embeddings (hidden_size_per_layer_input > 0, Gemma 4 E2B/E4B) are not supported");
    }
    // the full layers' "proportional" RoPE: ggml rotates the whole head, so the dimensions past the
    // proportional part get a frequency factor of 1e30 (an angle of ~0): written first, as llama.cpp
    const json::Value* full = rope_params(h, "full_attention");
    const json::Value* type = full && full->is_object() ? full->find("rope_type") : nullptr;
    if (!type || !type->is_string() || type->as_string() != "proportional") {
        throw Error(h.source() + ": rope_parameters.full_attention.rope_type must be \"proportional\"");
    }
    const int64_t head_dim_full = h.require_int({"global_head_dim"});
    const double partial = rope_number(h, "full_attention", "partial_rotary_factor", 1.0);
    const int64_t n_rot = static_cast<int64_t>(static_cast<double>(head_dim_full) * partial / 2);
    PlannedTensor rf;
    rf.name = "rope_freqs.weight";
    rf.values.assign(static_cast<size_t>(head_dim_full / 2), 1e30f);
    std::fill_n(rf.values.begin(), std::min<int64_t>(n_rot, head_dim_full / 2), 1.0f);
    rf.shape = {head_dim_full / 2};
    plan.tensors.push_back(std::move(rf));

    for (const SafeTensor* t : checkpoint.tensors()) {
        const std::string name = text_name(t->name);
        if (name.empty() || name.ends_with(".rotary_emb.inv_freq")) continue;
        // llama.cpp drops the untied lm_head (Gemma's is the embedding) and the assistant's
        // ordered-embedding head
        if (name == "lm_head.weight" || (assistant && name.find("masked_embedding") != std::string::npos)) continue;
        PlannedTensor out;
        out.name = gguf_name(name, assistant, n_layers, *t->file);
        if (out.name.empty()) {
            throw Error(*t->file + ": cannot map tensor '" + t->name + "' for " + std::string(arch.hf_class));
        }
        out.shape = t->shape;
        out.parts = {t};
        if (t->dtype == Dtype::U8) throw Error(*t->file + ": tensor '" + t->name + "' has dtype U8");
        if (out.shape.size() > 4) throw Error(*t->file + ": tensor '" + t->name + "' has more than 4 dimensions");
        out.type = choose_type(out, outtype);
        plan.tensors.push_back(std::move(out));
    }
}

void add_gemma4_hparams(gguf::Metadata& m, const Architecture& arch, const HfConfig& h, uint32_t file_type) {
    const std::string a(arch.name);
    const auto key = [&](const std::string& k) { return a + "." + k; };
    const auto u32 = [&](const std::string& k, int64_t v) {
        if (v < 0 || v > UINT32_MAX) throw Error(h.source() + ": a value for " + key(k) + " is out of range");
        m.set(key(k), gguf::Value::u32(static_cast<uint32_t>(v)));
    };
    const auto f32 = [&](const std::string& k, double v) { m.set(key(k), gguf::Value::f32(static_cast<float>(v))); };
    const int64_t n_layers = h.require_int({"num_hidden_layers"});
    const std::vector<bool> swa = sliding_layers(h, n_layers);

    // TextModel.set_gguf_parameters
    u32("block_count", n_layers);
    u32("context_length", h.find_int({"max_position_embeddings"}).value_or(131072));
    u32("embedding_length", h.require_int({"hidden_size"}));
    u32("feed_forward_length", h.require_int({"intermediate_size"}));
    u32("attention.head_count", h.find_int({"num_attention_heads"}).value_or(8));
    u32("attention.head_count_kv", h.find_int({"num_key_value_heads"}).value_or(4));
    f32("rope.freq_base", rope_number(h, "full_attention", "rope_theta", 1000000.0));
    if (const json::Value* s = rope_params(h, "sliding_attention"); s && s->is_object() && s->find("rope_theta")) {
        f32("rope.freq_base_swa", rope_number(h, "sliding_attention", "rope_theta", 10000.0));
    }
    f32("attention.layer_norm_rms_epsilon", h.find_number({"rms_norm_eps"}).value_or(1e-6));
    if (auto e = h.find_int({"num_local_experts", "num_experts"})) u32("expert_count", *e);
    if (auto e = h.find_int({"num_experts_per_tok", "num_experts_per_token", "top_k_experts"})) u32("expert_used_count", *e);
    const int64_t head_dim_swa = h.find_int({"head_dim"}).value_or(256);
    u32("attention.key_length", head_dim_swa);
    u32("attention.value_length", head_dim_swa);
    m.set("general.file_type", gguf::Value::u32(file_type));
    // Gemma3Model.set_gguf_parameters (the keys it repeats keep their place)
    if (auto cap = h.find_number({"final_logit_softcapping"}); cap && *cap != 0.0) f32("final_logit_softcapping", *cap);
    const auto pattern = h.find_int({"sliding_window_pattern"});
    if (!pattern || *pattern != 1) u32("attention.sliding_window", h.require_int({"sliding_window"}));
    // Gemma4Model.set_gguf_parameters
    u32("attention.shared_kv_layers", h.require_int({"num_kv_shared_layers"}));
    u32("embedding_length_per_layer_input", h.find_int({"hidden_size_per_layer_input"}).value_or(0));
    gguf::Array flags;
    flags.elem_type = gguf::ValueType::Bool;
    for (bool s : swa) flags.items.push_back(gguf::Value::boolean(s));
    m.set(key("attention.sliding_window_pattern"), gguf::Value::array(std::move(flags)));
    const int64_t head_dim_full = h.require_int({"global_head_dim"});
    u32("attention.key_length", head_dim_full);
    u32("attention.value_length", head_dim_full);
    u32("attention.key_length_swa", head_dim_swa);
    u32("attention.value_length_swa", head_dim_swa);
    if (auto f = h.find_int({"expert_intermediate_size", "moe_intermediate_size"})) u32("expert_feed_forward_length", *f);
    if (h.find({"use_double_wide_mlp"}) && h.find({"use_double_wide_mlp"})->is_bool() &&
        h.find({"use_double_wide_mlp"})->as_bool()) {
        throw Error(h.source() + ": use_double_wide_mlp (Gemma 4 E2B/E4B) is not supported");
    }
    const auto kv_full = h.find_int({"num_global_key_value_heads"});
    const auto kv_swa = h.find_int({"num_key_value_heads"});
    if (kv_full && kv_swa) {
        gguf::Array kv;
        kv.elem_type = gguf::ValueType::I32;
        for (bool s : swa) kv.items.push_back(gguf::Value::i32(static_cast<int32_t>(s ? *kv_swa : *kv_full)));
        m.set(key("attention.head_count_kv"), gguf::Value::array(std::move(kv)));
    }
    u32("rope.dimension_count", head_dim_full);
    const double partial_swa = rope_number(h, "sliding_attention", "partial_rotary_factor", 1.0);
    u32("rope.dimension_count_swa", static_cast<int64_t>(static_cast<double>(head_dim_swa) * partial_swa));
    if (is_gemma4_assistant(arch)) {
        u32("embedding_length_out", h.require_int({"backbone_hidden_size"}));
        u32("nextn_predict_layers", n_layers);
    }
}

Vocab load_gemma4_vocab(const std::string& dir, const HfConfig& hparams) {
    const fs::path path = fs::path(dir) / "tokenizer.json";
    if (!fs::is_regular_file(path)) throw Error(dir + ": gemma4 needs tokenizer.json");
    const json::Value tj = json::parse_file(path.string());
    const json::Value& model = tj["model"];
    // LlamaHfVocab's check: a SentencePiece-style BPE (byte fallback, a Sequence decoder)
    const json::Value* bf = model.find("byte_fallback");
    const json::Value* dec = tj.find("decoder");
    const json::Value* dec_type = dec && dec->is_object() ? dec->find("type") : nullptr;
    if (model["type"].as_string() != "BPE" || !bf || !bf->is_bool() || !bf->as_bool() || !dec_type ||
        !dec_type->is_string() || dec_type->as_string() != "Sequence") {
        throw Error(path.string() + ": not a SentencePiece-style BPE tokenizer (byte_fallback BPE with a Sequence decoder)");
    }
    Vocab v;
    v.model = "gemma4";
    v.input_files.push_back(path.string());
    std::map<int64_t, std::string> by_id;
    for (const auto& [text, id] : model["vocab"].entries()) by_id[id.as_int()] = text;
    const size_t n_base = by_id.size();
    if (n_base == 0 || by_id.rbegin()->first != static_cast<int64_t>(n_base) - 1) {
        throw Error(path.string() + ": the vocabulary's ids are not 0..n-1");
    }
    // added tokens past the base vocabulary follow it in id order
    std::map<int64_t, std::string> added;
    if (const json::Value* at = tj.find("added_tokens"); at && at->is_array()) {
        for (const json::Value& t : at->items()) {
            const int64_t id = t["id"].as_int();
            if (id >= static_cast<int64_t>(n_base)) added[id] = t["content"].as_string();
        }
    }
    for (const auto& [id, text] : by_id) v.tokens.push_back(text);
    for (const auto& [id, text] : added) {
        if (id != static_cast<int64_t>(v.tokens.size())) throw Error(path.string() + ": added token ids leave a gap");
        v.tokens.push_back(text);
    }
    // special ids: the named special tokens of tokenizer_config.json and its additional/extra ones
    std::vector<std::string> special_texts;
    const fs::path tc_path = fs::path(dir) / "tokenizer_config.json";
    if (fs::is_regular_file(tc_path)) {
        const json::Value tc = json::parse_file(tc_path.string());
        for (const char* k : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
            const json::Value* t = tc.find(k);
            if (t && t->is_string()) special_texts.push_back(t->as_string());
            if (t && t->is_object() && t->find("content")) special_texts.push_back((*t)["content"].as_string());
        }
        for (const char* k : {"additional_special_tokens", "extra_special_tokens"}) {
            const json::Value* list = tc.find(k);
            if (list && list->is_array()) {
                for (const json::Value& t : list->items()) {
                    if (t.is_string()) special_texts.push_back(t.as_string());
                }
            }
        }
    }
    static const std::regex byte_token("<0x[0-9A-Fa-f]{2}>");
    const std::vector<std::string> visible = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                                              "<|tool_response>", "<tool_response|>", "<|\"|>"};
    for (const std::string& text : v.tokens) {
        TokenType type = TokenType::Normal;
        if (std::regex_match(text, byte_token)) type = TokenType::Byte;
        else if (std::find(special_texts.begin(), special_texts.end(), text) != special_texts.end()) type = TokenType::Control;
        // Gemma4Model.set_vocab: always rendered, so that the chat parser can read them
        if (std::find(visible.begin(), visible.end(), text) != visible.end()) type = TokenType::UserDefined;
        v.types.push_back(type);
    }
    v.scores.assign(v.tokens.size(), -1000.0f);
    for (const json::Value& mg : model["merges"].items()) {
        if (mg.is_string()) {
            v.merges.push_back(mg.as_string());
        } else {
            v.merges.push_back(mg.at(0).as_string() + " " + mg.at(1).as_string());
        }
    }
    v.special = load_special_tokens(dir, &tj, hparams, v.tokens.size(), v);
    v.add_space_prefix = false;
    // Gemma4Model.set_vocab ends with add_add_bos_token(True)
    bool has_bos = false;
    for (auto& [type, add] : v.special.add) {
        if (type == "bos") add = has_bos = true;
    }
    if (!has_bos) v.special.add.emplace_back("bos", true);
    return v;
}

}  // namespace convert
