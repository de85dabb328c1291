// Small Hugging Face checkpoints made inside tests: safetensors files (well-formed or deliberately
// broken), config.json and a tiny byte-level BPE tokenizer.json, in a per-test temp directory.
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "quant/float16.h"

namespace hf_test {

namespace fs = std::filesystem;

struct TensorSpec {
    std::string name;
    std::string dtype;            // "F32", "F16", "BF16", "U8" (values 0..255) (or anything, to test rejection)
    std::vector<int64_t> shape;
    std::vector<float> values;    // n_elements values; empty: filled from the name
};

inline uint64_t n_elements(const std::vector<int64_t>& shape) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
}

// Distinct, exactly representable (in bf16 too) values that differ per tensor.
inline std::vector<float> pattern(const std::string& name, uint64_t n) {
    uint32_t seed = 2166136261u;
    for (char c : name) seed = (seed ^ static_cast<uint8_t>(c)) * 16777619u;
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int>((seed + i * 7) % 255) - 127) / 64.0f;
    return v;
}

inline std::string encode(const std::string& dtype, const std::vector<float>& values) {
    std::string out;
    out.reserve(values.size() * 4);
    for (float f : values) {
        if (dtype == "U8") {
            out += static_cast<char>(static_cast<uint8_t>(f));
        } else if (dtype == "F32") {
            out.append(reinterpret_cast<const char*>(&f), 4);
        } else {
            const uint16_t h = dtype == "F16" ? quant::f32_to_f16(f) : quant::f32_to_bf16(f);
            out.append(reinterpret_cast<const char*>(&h), 2);
        }
    }
    return out;
}

inline uint32_t element_size(const std::string& dtype) { return dtype == "F32" ? 4 : dtype == "U8" ? 1 : 2; }

inline void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The header JSON a well-formed file would have for `tensors`, laid out back to back.
inline std::string safetensors_header(const std::vector<TensorSpec>& tensors) {
    std::string h = "{\"__metadata__\":{\"format\":\"pt\"}";
    uint64_t offset = 0;
    for (const TensorSpec& t : tensors) {
        const uint64_t bytes = n_elements(t.shape) * element_size(t.dtype);
        h += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
        h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    return h + "}";
}

// A safetensors file; `header` replaces the generated header when given (for broken files).
inline void write_safetensors(const fs::path& p, const std::vector<TensorSpec>& tensors, std::string header = "") {
    if (header.empty()) header = safetensors_header(tensors);
    const uint64_t n = header.size();
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const TensorSpec& t : tensors) {
        const std::string data = encode(t.dtype, t.values.empty() ? pattern(t.name, n_elements(t.shape)) : t.values);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }
}

// A temp directory per test, removed afterwards.
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& tag) {
        path = fs::temp_directory_path() / ("convert-test-" + tag + "-" + std::to_string(::getpid()));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    fs::path operator/(const std::string& name) const { return path / name; }
};

struct ModelShape {
    int layers = 2, hidden = 64, heads = 4, kv_heads = 2, ff = 96, vocab = 8, experts = 0, expert_ff = 32;
};

// Tensors of a llama-style decoder in HF naming (what LlamaForCausalLM / Qwen3ForCausalLM save).
inline std::vector<TensorSpec> decoder_tensors(const ModelShape& s, const std::string& dtype, bool qk_norm = false,
                                               const std::string& experts = "") {
    const int head_dim = s.hidden / s.heads;
    std::vector<TensorSpec> t = {{"model.embed_tokens.weight", dtype, {s.vocab, s.hidden}, {}}};
    for (int l = 0; l < s.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        t.push_back({p + "input_layernorm.weight", dtype, {s.hidden}, {}});
        t.push_back({p + "self_attn.q_proj.weight", dtype, {s.heads * head_dim, s.hidden}, {}});
        t.push_back({p + "self_attn.k_proj.weight", dtype, {s.kv_heads * head_dim, s.hidden}, {}});
        t.push_back({p + "self_attn.v_proj.weight", dtype, {s.kv_heads * head_dim, s.hidden}, {}});
        t.push_back({p + "self_attn.o_proj.weight", dtype, {s.hidden, s.heads * head_dim}, {}});
        if (qk_norm) {
            t.push_back({p + "self_attn.q_norm.weight", dtype, {head_dim}, {}});
            t.push_back({p + "self_attn.k_norm.weight", dtype, {head_dim}, {}});
        }
        t.push_back({p + "post_attention_layernorm.weight", dtype, {s.hidden}, {}});
        if (experts == "mixtral") {
            t.push_back({p + "block_sparse_moe.gate.weight", dtype, {s.experts, s.hidden}, {}});
            for (int e = 0; e < s.experts; ++e) {
                const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
                t.push_back({q + "w1.weight", dtype, {s.expert_ff, s.hidden}, {}});
                t.push_back({q + "w2.weight", dtype, {s.hidden, s.expert_ff}, {}});
                t.push_back({q + "w3.weight", dtype, {s.expert_ff, s.hidden}, {}});
            }
        } else if (experts == "qwen") {
            t.push_back({p + "mlp.gate.weight", dtype, {s.experts, s.hidden}, {}});
            for (int e = 0; e < s.experts; ++e) {
                const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
                t.push_back({q + "down_proj.weight", dtype, {s.hidden, s.expert_ff}, {}});
                t.push_back({q + "gate_proj.weight", dtype, {s.expert_ff, s.hidden}, {}});
                t.push_back({q + "up_proj.weight", dtype, {s.expert_ff, s.hidden}, {}});
            }
        } else {
            t.push_back({p + "mlp.gate_proj.weight", dtype, {s.ff, s.hidden}, {}});
            t.push_back({p + "mlp.up_proj.weight", dtype, {s.ff, s.hidden}, {}});
            t.push_back({p + "mlp.down_proj.weight", dtype, {s.hidden, s.ff}, {}});
        }
    }
    t.push_back({"model.norm.weight", dtype, {s.hidden}, {}});
    t.push_back({"lm_head.weight", dtype, {s.vocab, s.hidden}, {}});
    return t;
}

inline std::string config_json(const std::string& arch, const ModelShape& s, const std::string& extra = "") {
    std::string c = "{\"architectures\":[\"" + arch + "\"],\"hidden_size\":" + std::to_string(s.hidden) +
                    ",\"intermediate_size\":" + std::to_string(s.ff) +
                    ",\"num_hidden_layers\":" + std::to_string(s.layers) +
                    ",\"num_attention_heads\":" + std::to_string(s.heads) +
                    ",\"num_key_value_heads\":" + std::to_string(s.kv_heads) +
                    ",\"max_position_embeddings\":512,\"rms_norm_eps\":1e-06,\"rope_theta\":10000.0" +
                    ",\"vocab_size\":" + std::to_string(s.vocab) + ",\"bos_token_id\":1,\"eos_token_id\":2";
    if (s.experts)
        c += ",\"num_local_experts\":" + std::to_string(s.experts) + ",\"num_experts_per_tok\":2" +
             ",\"moe_intermediate_size\":" + std::to_string(s.expert_ff);
    return c + extra + "}";
}

// Eight tokens: "<|endoftext|>" (special, id 0), bytes-as-text "a".."e", merges "a b", "ab c".
inline std::string tokenizer_json(const std::string& extra_added = "") {
    return R"({"version":"1.0","added_tokens":[{"id":0,"content":"<|endoftext|>","special":true,"normalized":false})" +
           extra_added +
           R"(],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},)"
           R"("post_processor":null,"decoder":{"type":"ByteLevel"},)"
           R"("model":{"type":"BPE","byte_fallback":false,"vocab":{"<|endoftext|>":0,"a":1,"b":2,"c":3,"ab":4,"abc":5,"d":6,"e":7},)"
           R"("merges":[["a","b"],["ab","c"]]}})";
}

// A complete checkpoint in `dir`: config.json, one model.safetensors, tokenizer.json.
inline void write_checkpoint(const fs::path& dir, const std::string& arch, const ModelShape& s,
                             const std::vector<TensorSpec>& tensors, const std::string& extra_config = "") {
    write_file(dir / "config.json", config_json(arch, s, extra_config));
    write_safetensors(dir / "model.safetensors", tensors);
    write_file(dir / "tokenizer.json", tokenizer_json());
}

}  // namespace hf_test
