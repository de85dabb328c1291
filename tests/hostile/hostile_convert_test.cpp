// gguf-convert over damaged Hugging Face checkpoints: hyper-parameters the runtime would refuse
// are refused before anything is written, and no input of a conversion (the shard index
// included) is ever replaced, with or without --force.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "hf_checkpoint.h"
#include "run_command.h"

namespace fs = std::filesystem;

namespace {

using hf_test::ModelShape;
using testing_support::run_app;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

void expect_one_error(const testing_support::CommandResult& r, const std::string& needle) {
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

// config.json edited after a valid checkpoint was written: the tensors stay those of `s`
void write_with_config(const fs::path& dir, const ModelShape& s, const std::string& config) {
    hf_test::write_checkpoint(dir, "LlamaForCausalLM", s, hf_test::decoder_tensors(s, "F32"));
    hf_test::write_file(dir / "config.json", config);
}

TEST(HostileConvert, HyperParametersTheRuntimeRefusesAreRefusedBeforeWriting) {
    ModelShape s;
    s.layers = 1;
    struct Case {
        const char* what;
        std::string config;
        const char* needle;
    };
    auto with = [&](ModelShape m, const std::string& extra = "") { return hf_test::config_json("LlamaForCausalLM", m, extra); };
    ModelShape many = s, zero = s;
    many.layers = 1000000;
    zero.hidden = 0;
    const std::vector<Case> cases{
        {"num_hidden_layers 1000000", with(many), "block_count 1000000 disagrees with the tensors"},
        {"hidden_size 0", with(zero), ""},
        {"head_dim 33", with(s, ",\"head_dim\":33"), ""},
        {"rms_norm_eps -1", std::string(with(s)).replace(with(s).find("1e-06"), 5, "-1.0"), "layer_norm_rms_epsilon"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        hf_test::TempDir dir("hostile-hp");
        write_with_config(dir.path, s, c.config);
        const fs::path out = dir / "out.gguf";
        const auto r = run_app("gguf-convert", q(dir.path) + " -o " + q(out));
        expect_one_error(r, c.needle);
        EXPECT_FALSE(fs::exists(out));
        for (const auto& e : fs::directory_iterator(dir.path)) {
            EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
        }
    }
}

TEST(HostileConvert, ExpertsPerTokenBeyondTheExperts) {
    ModelShape s;
    s.layers = 1;
    s.experts = 4;
    hf_test::TempDir dir("hostile-moe");
    hf_test::write_checkpoint(dir.path, "MixtralForCausalLM", s, hf_test::decoder_tensors(s, "F32", false, "mixtral"));
    std::string config = hf_test::config_json("MixtralForCausalLM", s);
    config.replace(config.find("\"num_experts_per_tok\":2"), 23, "\"num_experts_per_tok\":64");
    hf_test::write_file(dir / "config.json", config);
    const auto r = run_app("gguf-convert", q(dir.path) + " -o " + q(dir / "out.gguf"));
    expect_one_error(r, "expert_used_count");
    EXPECT_FALSE(fs::exists(dir / "out.gguf"));
}

TEST(HostileConvert, TheShardIndexIsAnInputToo) {
    ModelShape s;
    s.layers = 1;
    hf_test::TempDir dir("hostile-index");
    const auto tensors = hf_test::decoder_tensors(s, "F32");
    hf_test::write_checkpoint(dir.path, "LlamaForCausalLM", s, tensors);
    // the same tensors behind an index that names the one shard
    std::string index = "{\"metadata\":{},\"weight_map\":{";
    for (size_t i = 0; i < tensors.size(); ++i) index += (i ? "," : "") + ("\"" + tensors[i].name + "\":\"model.safetensors\"");
    index += "}}";
    const fs::path index_path = dir / "model.safetensors.index.json";
    hf_test::write_file(index_path, index);
    for (const char* force : {"", " --force"}) {
        SCOPED_TRACE(force);
        const auto r = run_app("gguf-convert", q(dir.path) + force + " -o " + q(index_path));
        expect_one_error(r, force[0] ? "is an input of this job" : "exists; pass --force");
        std::ifstream in(index_path);
        EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), index);
    }
    // a fresh output beside the inputs is fine, and replacing it needs --force
    const fs::path out = dir / "model.gguf";
    ASSERT_EQ(run_app("gguf-convert", q(dir.path) + " -o " + q(out)).status, 0);
    expect_one_error(run_app("gguf-convert", q(dir.path) + " -o " + q(out)), "pass --force");
    EXPECT_EQ(run_app("gguf-convert", q(dir.path) + " --force -o " + q(out)).status, 0);
    // a directory output fails before the checkpoint is read
    expect_one_error(run_app("gguf-convert", q(dir.path) + " -o " + q(dir.path)), "is a directory");
}

}  // namespace
