// gguf-synth from the outside: small versions of its presets have the real models' tensor types, load
// and run in gguf-run, and do not depend on the thread count; bad options give one error line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "gguf/file.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;
using gguf::GgmlType;

testing_support::CommandResult synth(const std::string& args) {
    return testing_support::run_binary(fs::path(GGUF_BUILD_DIR) / "bench" / "gguf-synth", args);
}

fs::path temp(const std::string& name) {
    return fs::temp_directory_path() / ("synth_" + std::to_string(::getpid()) + "_" + name + ".gguf");
}

GgmlType type_of(const gguf::File& f, const std::string& name) {
    for (const auto& t : f.tensors()) {
        if (t.name == name) return t.type;
    }
    ADD_FAILURE() << name << " missing";
    return GgmlType::F32;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(SynthCli, Qwen3MoeQ4KMHasTheRecipeTypesAndRuns) {
    const fs::path out = temp("q4km");
    const auto r = synth("'" + out.string() + "' --layers 2 --vocab 1024 --experts 16 --threads 2");
    ASSERT_EQ(r.status, 0) << r.err;
    {
        const gguf::File f = gguf::File::open(out.string());
        EXPECT_EQ(f.metadata().get_string("general.architecture"), "qwen3moe");
        EXPECT_EQ(f.metadata().get_u32("qwen3moe.block_count"), 2u);
        EXPECT_EQ(f.metadata().get_u32("general.file_type"), 15u);
        EXPECT_EQ(f.tensors().size(), 3u + 2 * 12);
        // llama.cpp's Q4_K_M: Q6_K output, and V and down projections in the last eighth of the layers (and every third)
        EXPECT_EQ(type_of(f, "output.weight"), GgmlType::Q6_K);
        EXPECT_EQ(type_of(f, "token_embd.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.0.ffn_gate_exps.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.0.ffn_down_exps.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.1.ffn_down_exps.weight"), GgmlType::Q6_K);
        EXPECT_EQ(type_of(f, "blk.1.ffn_gate_inp.weight"), GgmlType::F32);
        for (const auto& t : f.tensors()) {
            if (t.name == "blk.1.ffn_up_exps.weight") {
                EXPECT_EQ(t.dims, (std::vector<int64_t>{2048, 768, 16}));
            }
        }
    }
    const auto run = testing_support::run_app("gguf-run", "bench -m '" + out.string() + "' -p 16 -n 4 -r 1 -t 2");
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_NE(run.out.find("tg4"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("pp16"), std::string::npos) << run.out;
    fs::remove(out);
}

TEST(SynthCli, Q8_0RunsAndBytesDoNotDependOnThreads) {
    const fs::path a = temp("q8a"), b = temp("q8b");
    ASSERT_EQ(synth("'" + a.string() + "' --type Q8_0 --layers 1 --vocab 512 --experts 8 --threads 1").status, 0);
    ASSERT_EQ(synth("'" + b.string() + "' --type q8_0 --layers 1 --vocab 512 --experts 8 --threads 3").status, 0);
    EXPECT_TRUE(slurp(a) == slurp(b));
    ASSERT_EQ(synth("'" + b.string() + "' --type Q8_0 --layers 1 --vocab 512 --experts 8 --seed 8").status, 0);
    EXPECT_FALSE(slurp(a) == slurp(b));
    {
        const gguf::File f = gguf::File::open(a.string());
        EXPECT_EQ(type_of(f, "output.weight"), GgmlType::Q8_0);
        EXPECT_EQ(type_of(f, "blk.0.ffn_down_exps.weight"), GgmlType::Q8_0);
    }
    const auto run = testing_support::run_app("gguf-run", "-m '" + a.string() + "' -t 1 -p 'tt' -n 3");
    EXPECT_EQ(run.status, 0) << run.err;
    fs::remove(a);
    fs::remove(b);
}

TEST(SynthCli, GptOssHasMxfp4ExpertsAndRuns) {
    const fs::path out = temp("oss");
    const auto r = synth("'" + out.string() + "' --preset gpt-oss-20b --type MXFP4_MOE --layers 1 --vocab 512 --experts 4");
    ASSERT_EQ(r.status, 0) << r.err;
    {
        const gguf::File f = gguf::File::open(out.string());
        EXPECT_EQ(f.metadata().get_string("general.architecture"), "gpt-oss");
        EXPECT_EQ(type_of(f, "blk.0.ffn_up_exps.weight"), GgmlType::MXFP4);
        EXPECT_EQ(type_of(f, "blk.0.attn_q.weight"), GgmlType::Q8_0);
        EXPECT_EQ(type_of(f, "blk.0.attn_sinks.weight"), GgmlType::F32);
    }
    // the CPU runs gpt-oss (sinks, sliding window, biased experts, MXFP4): finite logits are checked
    // on every step, so a clean exit means the random model computed
    const auto run = testing_support::run_app("gguf-run", "-m '" + out.string() + "' -t 1 -ngl 0 -p 'tt' -n 3");
    EXPECT_EQ(run.status, 0) << run.err;
    const auto bench = testing_support::run_app("gguf-run", "bench -m '" + out.string() + "' -ngl 0 -p 16 -n 2 -r 1 -t 2");
    EXPECT_EQ(bench.status, 0) << bench.err;
    fs::remove(out);
}

TEST(SynthCli, Gemma4HasItsLayerKindsAndRuns) {
    const fs::path out = temp("gemma4");
    const auto r = synth("'" + out.string() + "' --preset gemma-4-26b-a4b --type Q8_0 --layers 6 --vocab 512 --experts 4");
    ASSERT_EQ(r.status, 0) << r.err;
    {
        const gguf::File f = gguf::File::open(out.string());
        EXPECT_EQ(f.metadata().get_string("general.architecture"), "gemma4");
        EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->dims, (std::vector<int64_t>{2816, 16 * 256}));
        EXPECT_EQ(f.find_tensor("blk.5.attn_q.weight")->dims, (std::vector<int64_t>{2816, 16 * 512}));
        EXPECT_EQ(f.find_tensor("blk.5.attn_v.weight"), nullptr);  // full layers: V is K's projection
        EXPECT_EQ(f.find_tensor("blk.0.ffn_gate_up_exps.weight")->dims, (std::vector<int64_t>{2816, 1408, 4}));
        EXPECT_EQ(type_of(f, "blk.0.ffn_down_exps.weight"), GgmlType::Q8_0);
        EXPECT_EQ(type_of(f, "blk.0.ffn_gate_inp.scale"), GgmlType::F32);
    }
    // finite logits are checked on every step: a clean exit means the random model computed
    const auto run = testing_support::run_app("gguf-run", "-m '" + out.string() + "' -t 2 -c 32 -ngl 0 -p 'tt' -n 2");
    EXPECT_EQ(run.status, 0) << run.err;
}

// Qwen3.5-35B-A3B's shapes at llama.cpp's Q4_K_M: the convolution kernels, ssm_a / dt bias and the
// shared expert's gate stay F32; attn_qkv counts as a value projection (ranked with attn_v); the
// shared expert's down projection follows the layer rule like the routed ones.
TEST(SynthCli, Qwen35MoeHasTheRecipeTypesAndRuns) {
    const fs::path out = temp("q35");
    const auto r = synth("'" + out.string() + "' --preset qwen3.5-35b-a3b --layers 4 --vocab 1024 --experts 16 --threads 2");
    ASSERT_EQ(r.status, 0) << r.err;
    {
        const gguf::File f = gguf::File::open(out.string());
        EXPECT_EQ(f.metadata().get_string("general.architecture"), "qwen35moe");
        EXPECT_EQ(f.metadata().get_u32("qwen35moe.ssm.inner_size"), 4096u);
        EXPECT_EQ(f.tensors().size(), 3u + 3 * 19 + 16);
        EXPECT_EQ(type_of(f, "output.weight"), GgmlType::Q6_K);
        EXPECT_EQ(type_of(f, "blk.0.ssm_conv1d.weight"), GgmlType::F32);
        EXPECT_EQ(type_of(f, "blk.0.ssm_a"), GgmlType::F32);
        EXPECT_EQ(type_of(f, "blk.0.ssm_dt.bias"), GgmlType::F32);
        EXPECT_EQ(type_of(f, "blk.0.ffn_gate_inp_shexp.weight"), GgmlType::F32);
        EXPECT_EQ(type_of(f, "blk.0.ssm_alpha.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.0.ssm_out.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.0.attn_gate.weight"), GgmlType::Q4_K);
        // four value-like tensors (three attn_qkv, one attn_v): the last quarter and every third get Q6_K
        EXPECT_EQ(type_of(f, "blk.0.attn_qkv.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.2.attn_qkv.weight"), GgmlType::Q6_K);
        EXPECT_EQ(type_of(f, "blk.3.attn_v.weight"), GgmlType::Q6_K);
        EXPECT_EQ(type_of(f, "blk.0.ffn_down_shexp.weight"), GgmlType::Q4_K);
        EXPECT_EQ(type_of(f, "blk.2.ffn_down_shexp.weight"), GgmlType::Q6_K);
        EXPECT_EQ(type_of(f, "blk.2.ffn_down_exps.weight"), GgmlType::Q6_K);
    }
    // the CPU runs qwen35moe: finite logits are checked on every step
    const auto run = testing_support::run_app("gguf-run", "-m '" + out.string() + "' -t 2 -ngl 0 -p 'tt' -n 3");
    EXPECT_EQ(run.status, 0) << run.err;
    const auto bench = testing_support::run_app("gguf-run", "bench -m '" + out.string() + "' -ngl 0 -p 16 -n 2 -r 1 -t 2");
    EXPECT_EQ(bench.status, 0) << bench.err;
    fs::remove(out);
}

TEST(SynthCli, BadOptionsExit2AndUnknownNamesExit1) {
    EXPECT_EQ(synth("").status, 2);
    EXPECT_EQ(synth("x.gguf --layers many").status, 2);
    EXPECT_EQ(synth("x.gguf --bogus 1").status, 2);
    const auto p = synth("x.gguf --preset nonesuch");
    EXPECT_EQ(p.status, 1);
    EXPECT_EQ(p.err.rfind("error: unknown preset", 0), 0u) << p.err;
    EXPECT_EQ(synth("x.gguf --type Q9_9").status, 1);
    EXPECT_EQ(synth("x.gguf --layers 49").status, 1);
    EXPECT_EQ(synth("x.gguf --experts 129").status, 1);
    EXPECT_FALSE(fs::exists("x.gguf"));
}

}  // namespace
