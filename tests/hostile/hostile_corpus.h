// The hostile corpus: GGUF files crafted to break tools (NaN scales, NaN norms, lying headers,
// zero and huge dimensions, truncations, bad hyper-parameters) made from the embedded default model
// (testdata/, always present) or byte by byte, and a big F32 model for the signal tests.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/writer.h"
#include "gguf_builder.h"

namespace hostile {

namespace fs = std::filesystem;

inline fs::path default_model() { return fs::path(GGUF_SOURCE_DIR) / "testdata" / "tiny-dense-q8_0.gguf"; }

struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& tag) {
        path = fs::temp_directory_path() / ("hostile-" + tag + "-" + std::to_string(::getpid()));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    fs::path operator/(const std::string& name) const { return path / name; }
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

// A copy of `in` with its metadata edited and `bytes` written over a tensor's data at `offset`.
struct Mutation {
    std::function<void(gguf::Metadata&)> metadata;
    std::string tensor;
    uint64_t offset = 0;
    std::vector<uint8_t> bytes;
};

inline void mutate(const fs::path& in, const fs::path& out, const Mutation& m) {
    const gguf::File f = gguf::File::open(in.string());
    gguf::Writer w(out.string());
    w.metadata() = f.metadata();
    if (m.metadata) m.metadata(w.metadata());
    for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, t.dims);
    for (const auto& t : f.tensors()) {
        std::vector<uint8_t> data(f.tensor_data(t).begin(), f.tensor_data(t).end());
        if (t.name == m.tensor) std::memcpy(data.data() + m.offset, m.bytes.data(), m.bytes.size());
        w.write_data(data);
    }
    w.finish();
}

inline std::vector<uint8_t> f32_bytes(float v) {
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &v, 4);
    return b;
}

// The named corpus, each file a defect the tools must report as one error line.
struct Corpus {
    fs::path dir;
    fs::path nan_scale, nan_norm, inf_weight, block_count_low, block_count_high, eps_negative, rope_inf, zero_dim,
        huge_dims, truncated, bad_utf8_name;

    explicit Corpus(const fs::path& d) : dir(d) {
        const fs::path base = default_model();
        auto set_u32 = [](const char* key, uint32_t v) {
            return [=](gguf::Metadata& md) { md.set(key, gguf::Value::u32(v)); };
        };
        auto set_f32 = [](const char* key, float v) {
            return [=](gguf::Metadata& md) { md.set(key, gguf::Value::f32(v)); };
        };
        // a Q8_0 block whose f16 scale is NaN (0x7e00), in the first row of a weight matrix
        nan_scale = dir / "nan-scale.gguf";
        mutate(base, nan_scale, {{}, "blk.2.ffn_down.weight", 0, {0x00, 0x7e}});
        nan_norm = dir / "nan-norm.gguf";
        mutate(base, nan_norm, {{}, "blk.1.attn_norm.weight", 4 * 7, f32_bytes(std::nanf(""))});
        // an f16 infinity as the scale of block 3 of row 0 (columns 96..127): not NaN, still poison
        inf_weight = dir / "inf-scale.gguf";
        mutate(base, inf_weight, {{}, "blk.3.ffn_down.weight", 34 * 3, {0x00, 0x7c}});
        block_count_low = dir / "block-count-low.gguf";
        mutate(base, block_count_low, {set_u32("llama.block_count", 3), "", 0, {}});
        block_count_high = dir / "block-count-high.gguf";
        mutate(base, block_count_high, {set_u32("llama.block_count", 1000000), "", 0, {}});
        eps_negative = dir / "eps-negative.gguf";
        mutate(base, eps_negative, {set_f32("llama.attention.layer_norm_rms_epsilon", -1.0f), "", 0, {}});
        rope_inf = dir / "rope-inf.gguf";
        mutate(base, rope_inf, {set_f32("llama.rope.freq_base", INFINITY), "", 0, {}});

        using testing_support::GgufBuilder;
        auto save = [](const fs::path& p, const GgufBuilder& b) {
            std::ofstream(p, std::ios::binary)
                .write(reinterpret_cast<const char*>(b.bytes.data()), static_cast<std::streamsize>(b.bytes.size()));
        };
        zero_dim = dir / "zero-dim.gguf";
        {
            GgufBuilder b;
            b.header(2, 1).kv_str("general.architecture", "llama");
            b.tensor("blk.0.ffn_up.weight", {0, 32}, 0, 0).tensor("blk.0.ffn_down.weight", {32, 0}, 1, 0).pad();
            save(zero_dim, b);
        }
        huge_dims = dir / "huge-dims.gguf";
        {
            GgufBuilder b;
            b.header(1, 1).kv_str("general.architecture", "llama");
            b.tensor("token_embd.weight", {int64_t{1} << 40, int64_t{1} << 20}, 0, 0).pad().zeros(64);
            save(huge_dims, b);
        }
        truncated = dir / "truncated.gguf";
        {
            std::ifstream in(base, std::ios::binary);
            std::vector<char> bytes(static_cast<size_t>(fs::file_size(base) / 2));
            in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
            std::ofstream(truncated, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        }
        bad_utf8_name = dir / "bad-utf8-name.gguf";
        {
            GgufBuilder b;
            b.header(1, 1).kv_str("general.architecture", "llama");
            b.tensor(std::string("w\xff\xfe.weight"), {32}, 0, 0).pad().zeros(128);
            save(bad_utf8_name, b);
        }
    }
};

// An F32 llama-shaped model of `n_layer` blocks of width n_embd (random weights), big enough that
// quantizing it takes a moment: the victim of the signal tests.
inline void write_big_f32_model(const fs::path& path, int64_t n_embd, int64_t n_ff, int n_layer, float stddev = 0.02f) {
    gguf::Writer w(path.string());
    auto& md = w.metadata();
    md.set("general.architecture", gguf::Value::string("llama"));
    md.set("llama.block_count", gguf::Value::u32(static_cast<uint32_t>(n_layer)));
    md.set("llama.context_length", gguf::Value::u32(256));
    md.set("llama.embedding_length", gguf::Value::u32(static_cast<uint32_t>(n_embd)));
    md.set("llama.feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(n_ff)));
    md.set("llama.attention.head_count", gguf::Value::u32(8));
    md.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
    std::vector<std::pair<std::string, std::vector<int64_t>>> tensors{{"token_embd.weight", {n_embd, 256}},
                                                                       {"output_norm.weight", {n_embd}}};
    for (int il = 0; il < n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) tensors.push_back({p + n + ".weight", {n_embd, n_embd}});
        tensors.push_back({p + "ffn_gate.weight", {n_embd, n_ff}});
        tensors.push_back({p + "ffn_up.weight", {n_embd, n_ff}});
        tensors.push_back({p + "ffn_down.weight", {n_ff, n_embd}});
        tensors.push_back({p + "attn_norm.weight", {n_embd}});
        tensors.push_back({p + "ffn_norm.weight", {n_embd}});
    }
    for (const auto& [name, dims] : tensors) w.add_tensor(name, gguf::GgmlType::F32, dims);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, stddev);
    for (const auto& [name, dims] : tensors) {
        uint64_t n = 1;
        for (int64_t d : dims) n *= static_cast<uint64_t>(d);
        std::vector<float> v(n);
        for (auto& x : v) x = normal(rng);
        w.write_data({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
    }
    w.finish();
}

}  // namespace hostile
