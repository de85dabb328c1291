// Writes a minimal llama-architecture GGUF (F32, one block, n_embd 32, vocab 8) with one tensor
// optionally left out, reshaped or the architecture renamed: the bad inputs model loading must name.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf_builder.h"

namespace testing_support {

struct TinyModelSpec {
    std::string arch = "llama";
    std::string drop;      // tensor to leave out
    std::string reshape;   // tensor whose second dimension is halved
};

inline TinyModelSpec dropping(std::string name) {
    TinyModelSpec s;
    s.drop = std::move(name);
    return s;
}
inline TinyModelSpec reshaping(std::string name) {
    TinyModelSpec s;
    s.reshape = std::move(name);
    return s;
}
inline TinyModelSpec with_arch(std::string arch) {
    TinyModelSpec s;
    s.arch = std::move(arch);
    return s;
}

inline void write_tiny_model(const std::filesystem::path& path, const TinyModelSpec& spec = {}) {
    struct T {
        std::string name;
        std::vector<int64_t> dims;
    };
    std::vector<T> tensors{{"token_embd.weight", {32, 8}}, {"output_norm.weight", {32}}, {"output.weight", {32, 8}}};
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
        tensors.push_back({std::string("blk.0.") + n + ".weight", {32, 32}});
    }
    tensors.push_back({"blk.0.attn_norm.weight", {32}});
    tensors.push_back({"blk.0.ffn_norm.weight", {32}});
    std::vector<T> kept;
    for (auto t : tensors) {
        if (t.name == spec.drop) continue;
        if (t.name == spec.reshape) t.dims[1] /= 2;
        kept.push_back(t);
    }
    const std::string a = spec.arch;
    GgufBuilder b;
    b.header(kept.size(), 9).kv_str("general.architecture", a);
    for (auto [key, v] : std::vector<std::pair<std::string, uint32_t>>{{".context_length", 64},
                                                                        {".embedding_length", 32},
                                                                        {".block_count", 1},
                                                                        {".feed_forward_length", 32},
                                                                        {".attention.head_count", 1},
                                                                        {".attention.head_count_kv", 1},
                                                                        {".vocab_size", 8}}) {
        b.kv_u32(a + key, v);
    }
    const float eps = 1e-5f;
    b.str(a + ".attention.layer_norm_rms_epsilon").u32(6).raw(&eps, 4);
    uint64_t offset = 0;
    std::vector<uint64_t> sizes;
    for (const auto& t : kept) {
        uint64_t n = 1;
        for (int64_t d : t.dims) n *= static_cast<uint64_t>(d);
        b.tensor(t.name, t.dims, 0, offset);
        sizes.push_back(n * 4);
        offset += (n * 4 + 31) / 32 * 32;
    }
    b.pad();
    for (uint64_t s : sizes) {
        std::vector<float> data(s / 4);
        for (size_t i = 0; i < data.size(); ++i) data[i] = 0.01f * static_cast<float>(i % 7) + 0.5f;
        b.raw(data.data(), s).pad();
    }
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.bytes.data()),
                                                static_cast<std::streamsize>(b.bytes.size()));
}

}  // namespace testing_support
