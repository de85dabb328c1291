// gguf-convert's output runs: HF checkpoints of every supported class, rebuilt from the fixtures' trained
// weights so that each has a known answer, converted and then run by the runtime.
//   Qwen2 / Mistral / Mixtral (experts = copies of the dense FFN) of tiny-dense -> tiny-dense's HF logits
//   Qwen3 of tiny-moe's first expert -> the Qwen3Moe checkpoint whose 16 experts are all that expert
// each also quantized to Q4_K_M and run, and the convert issue's "Done when": converted, then quantized
// (Q4_K_M), the model generates in gguf-run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convert/checkpoint.h"
#include "convert/converter.h"
#include "fixtures.h"
#include "hf_checkpoint.h"
#include "hf_refs.h"
#include "logits_compare.h"
#include "quant/float16.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;
using hf_test::TensorSpec;
using testing_support::fixture;
using testing_support::HfRefs;

// A fixture checkpoint's tensors by HF name, as f32 (its bf16 values, exactly).
std::map<std::string, TensorSpec> read_fixture(const std::string& model) {
    const convert::Checkpoint ckpt = convert::Checkpoint::open(fixture("hf/" + model).string());
    std::map<std::string, TensorSpec> out;
    for (const convert::SafeTensor* t : ckpt.tensors()) {
        EXPECT_EQ(t->dtype, convert::Dtype::BF16) << t->name;
        std::vector<float> v(t->n_elements());
        for (size_t i = 0; i < v.size(); ++i) {
            uint16_t h;
            std::memcpy(&h, t->data.data() + 2 * i, 2);
            v[i] = quant::bf16_to_f32(h);
        }
        out[t->name] = {t->name, "BF16", t->shape, std::move(v)};
    }
    return out;
}

std::string layer(int il, const std::string& rest) { return "model.layers." + std::to_string(il) + "." + rest; }

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

class ConvertRuns : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
        REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
        dir_ = fs::temp_directory_path() / ("convert-runs-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // A checkpoint of `tensors` with the fixture's tokenizer files and `config` (the fixture's
    // config.json edited by the caller), converted with the library; returns the GGUF's path.
    fs::path convert(const std::string& name, const std::string& source_model, const std::string& config,
                     const std::vector<TensorSpec>& tensors) {
        const fs::path ckpt = dir_ / name;
        fs::create_directories(ckpt);
        for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
            fs::copy_file(fixture("hf/" + source_model + "/" + f), ckpt / f);
        }
        hf_test::write_file(ckpt / "config.json", config);
        hf_test::write_safetensors(ckpt / "model.safetensors", tensors);
        convert::ConvertOptions opt;
        opt.input_dir = ckpt.string();
        opt.output_path = (dir_ / (name + ".gguf")).string();
        convert::convert_checkpoint(opt);
        fs::remove_all(ckpt);
        return opt.output_path;
    }

    static std::string fixture_config(const std::string& model) { return read_text(fixture("hf/" + model + "/config.json")); }

    static void expect_finite(const std::vector<float>& logits) {
        size_t bad = 0;
        for (float x : logits) bad += !std::isfinite(x);
        EXPECT_EQ(bad, 0u);
    }

    static void report(const char* what, const testing_support::Agreement& a) {
        std::printf("%s: max |diff| %.3g, same argmax %d/%d\n", what, a.max_abs_diff, a.same_argmax, a.positions);
    }

    void expect_reproduces_dense_hf(const char* what, const fs::path& gguf_path) {
        const HfRefs refs = HfRefs::load(fixture("hf/tiny-dense/refs.safetensors").string());
        const auto logits = testing_support::run_sequences(gguf_path.string(), refs, refs.n_tok);
        expect_finite(logits);
        const auto a = testing_support::agreement_with_hf(logits, refs, refs.n_tok);
        report(what, a);
        testing_support::expect_matches_hf(a);
        expect_q4_k_m_runs(gguf_path, logits, refs);
    }

    // gguf-quantize's Q4_K_M of a converted file runs too, close to the unquantized logits: llama.cpp's
    // Q4_K_M keeps the top token at about 90% of positions on these fixtures (REFERENCE.md).
    void expect_q4_k_m_runs(const fs::path& gguf_path, const std::vector<float>& full, const HfRefs& refs,
                            double min_same_top = 0.85) {
        const fs::path q4 = gguf_path.string() + ".q4_k_m.gguf";
        const auto q = testing_support::run_app("gguf-quantize", "'" + gguf_path.string() + "' '" + q4.string() + "' Q4_K_M 1");
        ASSERT_EQ(q.status, 0) << q.err;
        const auto logits = testing_support::run_sequences(q4.string(), refs, refs.n_tok);
        expect_finite(logits);
        const auto a = testing_support::agreement(logits, full, static_cast<int>(refs.n_vocab));
        std::printf("  Q4_K_M of it: same argmax as unquantized %d/%d\n", a.same_argmax, a.positions);
        EXPECT_GE(a.same_argmax, static_cast<int>(min_same_top * a.positions));
        fs::remove(q4);
    }

    fs::path dir_;
};

std::vector<TensorSpec> values_of(const std::map<std::string, TensorSpec>& m) {
    std::vector<TensorSpec> v;
    for (const auto& [name, t] : m) v.push_back(t);
    return v;
}

TEST_F(ConvertRuns, MistralOfTinyDenseReproducesHf) {
    const auto config = replaced(fixture_config("tiny-dense"), "\"LlamaForCausalLM\"", "\"MistralForCausalLM\"");
    expect_reproduces_dense_hf("Mistral checkpoint of tiny-dense, converted, vs HF",
                               convert("mistral", "tiny-dense", config, values_of(read_fixture("tiny-dense"))));
}

// Qwen2 keeps HF's Q/K layout (NEOX RoPE) and always has q/k/v biases: zero ones change nothing.
TEST_F(ConvertRuns, Qwen2OfTinyDenseReproducesHf) {
    auto tensors = read_fixture("tiny-dense");
    for (int il = 0; il < 6; ++il) {
        for (const char* p : {"q_proj", "k_proj", "v_proj"}) {
            const std::string name = layer(il, "self_attn." + std::string(p) + ".bias");
            const int64_t n = tensors.at(layer(il, "self_attn." + std::string(p) + ".weight")).shape[0];
            tensors[name] = {name, "BF16", {n}, std::vector<float>(static_cast<size_t>(n), 0.0f)};
        }
    }
    const auto config = replaced(fixture_config("tiny-dense"), "\"LlamaForCausalLM\"", "\"Qwen2ForCausalLM\"");
    expect_reproduces_dense_hf("Qwen2 checkpoint of tiny-dense, converted, vs HF",
                               convert("qwen2", "tiny-dense", config, values_of(tensors)));
}

// Mixtral experts that are all the dense FFN, with a random router: normalised top-2 weights sum to 1.
TEST_F(ConvertRuns, MixtralOfDenseCopiesReproducesHf) {
    auto tensors = read_fixture("tiny-dense");
    constexpr int kExperts = 4;
    std::mt19937 rng(11);
    std::normal_distribution<float> gauss(0.0f, 0.5f);
    for (int il = 0; il < 6; ++il) {
        const auto take = [&](const char* p) {
            TensorSpec t = tensors.at(layer(il, std::string("mlp.") + p + ".weight"));
            tensors.erase(t.name);
            return t;
        };
        const TensorSpec gate = take("gate_proj"), up = take("up_proj"), down = take("down_proj");
        for (int e = 0; e < kExperts; ++e) {
            const std::string q = layer(il, "block_sparse_moe.experts." + std::to_string(e) + ".");
            for (const auto& [w, src] : {std::pair{"w1", &gate}, std::pair{"w2", &down}, std::pair{"w3", &up}}) {
                tensors[q + w + ".weight"] = {q + w + ".weight", "BF16", src->shape, src->values};
            }
        }
        const std::string router = layer(il, "block_sparse_moe.gate.weight");
        std::vector<float> r(kExperts * 256);
        for (float& x : r) x = gauss(rng);
        tensors[router] = {router, "BF16", {kExperts, 256}, r};
    }
    auto config = replaced(fixture_config("tiny-dense"), "\"LlamaForCausalLM\"", "\"MixtralForCausalLM\"");
    config = replaced(config, "\"intermediate_size\"", "\"num_local_experts\": 4, \"num_experts_per_tok\": 2, \"intermediate_size\"");
    const fs::path out = convert("mixtral", "tiny-dense", config, values_of(tensors));
    EXPECT_EQ(gguf::File::open(out.string()).metadata().get_u32("llama.expert_count"), 4u);
    expect_reproduces_dense_hf("Mixtral checkpoint (4 copies of tiny-dense's FFN), converted, vs HF", out);
}

// Qwen3 (dense) of tiny-moe's expert 0 against Qwen3Moe with 16 copies of it: the same function.
TEST_F(ConvertRuns, Qwen3EqualsQwen3MoeOfOneExpert) {
    const auto moe = read_fixture("tiny-moe");
    std::map<std::string, TensorSpec> copies, dense;
    for (const auto& [name, t] : moe) {
        if (name.find(".mlp.") == std::string::npos) {
            copies[name] = dense[name] = t;
        } else if (name.ends_with(".mlp.gate.weight")) {
            copies[name] = t;
        }
    }
    for (int il = 0; il < 4; ++il) {
        for (const char* p : {"gate_proj", "up_proj", "down_proj"}) {
            const TensorSpec& first = moe.at(layer(il, "mlp.experts.0." + std::string(p) + ".weight"));
            for (int e = 0; e < 16; ++e) {
                const std::string name = layer(il, "mlp.experts." + std::to_string(e) + "." + p + ".weight");
                copies[name] = {name, "BF16", first.shape, first.values};
            }
            const std::string name = layer(il, "mlp." + std::string(p) + ".weight");
            dense[name] = {name, "BF16", first.shape, first.values};
        }
    }
    // the dense config keeps tiny-moe's expert keys: llama.cpp's converter then writes qwen3.expert_count,
    // which llama.cpp's qwen3 ignores, and so must the runtime
    const std::string moe_config = fixture_config("tiny-moe");
    auto dense_config = replaced(moe_config, "\"Qwen3MoeForCausalLM\"", "\"Qwen3ForCausalLM\"");
    dense_config = replaced(dense_config, "\"intermediate_size\": 768", "\"intermediate_size\": 256");

    const HfRefs refs = HfRefs::load(fixture("hf/tiny-moe/refs.safetensors").string());
    const auto moe_logits =
        testing_support::run_sequences(convert("qwen3moe", "tiny-moe", moe_config, values_of(copies)).string(), refs, 128);
    const fs::path dense_path = convert("qwen3", "tiny-moe", dense_config, values_of(dense));
    const gguf::File dense_file = gguf::File::open(dense_path.string());
    EXPECT_EQ(dense_file.metadata().get_string("general.architecture"), "qwen3");
    EXPECT_EQ(dense_file.metadata().get_u32("qwen3.expert_count"), 16u);  // copied from the config, ignored
    const auto dense_logits = testing_support::run_sequences(dense_path.string(), refs, 128);
    expect_finite(dense_logits);
    // one expert of a model trained with four per token: flatter logits, more top-token flips (80%)
    expect_q4_k_m_runs(dense_path, dense_logits, refs, 0.7);
    const auto a = testing_support::agreement(dense_logits, moe_logits, 4096);
    report("Qwen3 checkpoint (expert 0), converted, vs Qwen3Moe of 16 copies, converted", a);
    EXPECT_LE(a.max_abs_diff, 1e-4);
    EXPECT_EQ(a.same_argmax, a.positions);
}

// The convert issue's "Done when": the apps chained, HF checkpoint -> GGUF -> Q4_K_M -> generation.
TEST_F(ConvertRuns, ConvertedThenQuantizedModelGeneratesInGgufRun) {
    using testing_support::run_app;
    const std::string bf16 = (dir_ / "dense-bf16.gguf").string(), q4 = (dir_ / "dense-q4_k_m.gguf").string();
    const auto c = run_app("gguf-convert", "'" + fixture("hf/tiny-dense").string() + "' -o '" + bf16 + "'");
    ASSERT_EQ(c.status, 0) << c.err;
    const auto q = run_app("gguf-quantize", "'" + bf16 + "' '" + q4 + "' Q4_K_M 1");
    ASSERT_EQ(q.status, 0) << q.err;
    const auto r = run_app("gguf-run", "-m '" + q4 + "' -t 1 -p 'def fibonacci(n):' -n 24 --temp 0 --ignore-eos --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"generated_tokens\": 24"), std::string::npos) << r.out;
    std::printf("%s\n", r.out.c_str());
}

}  // namespace
