// gguf-convert end to end: exit codes, one-line errors, --help and the --json summary.
#include <gtest/gtest.h>

#include "convert/json.h"
#include "gguf/file.h"
#include "hf_checkpoint.h"
#include "run_command.h"

using namespace hf_test;
using testing_support::run_app;

TEST(ConvertCli, UsageErrorsExitTwo) {
    auto r = run_app("gguf-convert", "");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "error: expected one HF_DIR (see --help)\n");
    r = run_app("gguf-convert", "somedir");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "error: missing -o OUT.gguf (see --help)\n");
    r = run_app("gguf-convert", "somedir -o x.gguf --outtype q4_k");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "error: unknown --outtype 'q4_k' (f32, f16, bf16, q8_0, auto) (see --help)\n");
    r = run_app("gguf-convert", "--bogus");
    EXPECT_EQ(r.status, 2);
    r = run_app("gguf-convert", "--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--outtype"), std::string::npos);
    EXPECT_NE(r.out.find("Qwen3MoeForCausalLM"), std::string::npos);
}

TEST(ConvertCli, ErrorsAreOneLineAndExitOne) {
    TempDir dir("cli-errors");
    auto r = run_app("gguf-convert", "'" + (dir / "missing").string() + "' -o '" + (dir / "o.gguf").string() + "'");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "error: " + (dir / "missing").string() + ": not a directory (expected a Hugging Face model directory)\n");

    ModelShape s;
    s.layers = 1;
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "BF16"));
    // an existing output needs --force, and even --force never replaces an input
    r = run_app("gguf-convert", "'" + dir.path.string() + "' -o '" + (dir / "model.safetensors").string() + "'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("exists; pass --force to replace it\n"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
    r = run_app("gguf-convert",
                "'" + dir.path.string() + "' --force -o '" + (dir / "model.safetensors").string() + "'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("refusing to overwrite an input\n"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST(ConvertCli, JsonSummaryDescribesTheOutput) {
    TempDir dir("cli-json");
    ModelShape s;
    s.layers = 2;
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "BF16"));
    const std::string out = (dir / "out.gguf").string();
    auto r = run_app("gguf-convert", "'" + dir.path.string() + "' -o '" + out + "' --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");  // no progress when stderr is not a terminal
    const convert::json::Value j = convert::json::parse(r.out);
    EXPECT_EQ(j["output"].as_string(), out);
    EXPECT_EQ(j["architecture"].as_string(), "llama");
    EXPECT_EQ(j["hf_architecture"].as_string(), "LlamaForCausalLM");
    EXPECT_EQ(j["outtype"].as_string(), "bf16");  // auto on a bf16 checkpoint
    EXPECT_EQ(j["file_type"].as_int(), 32);
    EXPECT_EQ(j["tensors"].as_int(), 21);
    EXPECT_EQ(j["tensors_per_type"]["f32"].as_int(), 5);  // 2 x 2 layer norms + output_norm
    EXPECT_EQ(j["tokenizer"]["model"].as_string(), "gpt2");
    EXPECT_EQ(j["warnings"].size(), 0u);
    const gguf::File f = gguf::File::open(out);
    EXPECT_EQ(static_cast<int64_t>(f.file_size()), j["file_size"].as_int());
    EXPECT_EQ(static_cast<int64_t>(f.tensors().size()), j["tensors"].as_int());
}

// Streaming: converting a 136 MB checkpoint must not make the process hold it. Its peak resident
// set (reported in --json) stays near one conversion chunk (16 MiB of float32) plus buffers.
TEST(ConvertCli, MemoryStaysFarBelowTheCheckpointSize) {
    TempDir dir("cli-memory");
    ModelShape s;
    s.layers = 1;
    s.hidden = 512;
    s.heads = 8;
    s.kv_heads = 8;
    s.ff = 1024;
    s.vocab = 32768;  // embeddings and output: 2 x 64 MiB of f32
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "F32"));
    const uint64_t input = fs::file_size(dir / "model.safetensors");
    ASSERT_GT(input, 130u << 20);
    auto r = run_app("gguf-convert", "'" + dir.path.string() + "' -o '" + (dir / "o.gguf").string() + "' --outtype f16 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const uint64_t peak = static_cast<uint64_t>(convert::json::parse(r.out)["peak_rss_bytes"].as_int());
    EXPECT_LT(peak, 80u << 20) << "peak RSS " << (peak >> 20) << " MiB for a " << (input >> 20) << " MiB checkpoint";
}
