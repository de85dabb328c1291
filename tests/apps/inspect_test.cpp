// gguf-inspect end to end: summaries of the fixtures, diff, JSON, and one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "run_command.h"

using testing_support::fixture;
using testing_support::run_app;
namespace fs = std::filesystem;

TEST(InspectCli, UsageErrorsExitTwo) {
    auto r = run_app("gguf-inspect", "");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    r = run_app("gguf-inspect", "--diff one.gguf");
    EXPECT_EQ(r.status, 2);
    r = run_app("gguf-inspect", "--bogus-flag x.gguf");
    EXPECT_EQ(r.status, 2);
    r = run_app("gguf-inspect", "--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--tensors"), std::string::npos);
}

TEST(InspectCli, MalformedFileIsOneLineErrorWithOffset) {
    fs::path bad = fs::temp_directory_path() / ("bad-" + std::to_string(::getpid()) + ".gguf");
    {
        std::ofstream out(bad, std::ios::binary);
        const char header[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // ends before the kv count
        out.write(header, sizeof header);
    }
    auto r = run_app("gguf-inspect", bad.string());
    fs::remove(bad);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "error: " + bad.string() + ": unexpected end of file reading a u64 at offset 16\n");
    r = run_app("gguf-inspect", "/nonexistent.gguf");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err.rfind("error: /nonexistent.gguf: cannot open", 0), 0u) << r.err;
}

TEST(InspectCli, SummarizesTheMoeFixture) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    auto r = run_app("gguf-inspect", fixture("gguf/tiny-moe-bf16.gguf").string() + " --layers --tensors 'exps'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("architecture:  qwen3moe"), std::string::npos);
    EXPECT_NE(r.out.find("parameters:    15.49 M (15485440)"), std::string::npos);
    EXPECT_NE(r.out.find("[4096 x string]"), std::string::npos);  // vocabulary shown as a count
    EXPECT_NE(r.out.find("blk.3.ffn_down_exps.weight"), std::string::npos);
    EXPECT_EQ(r.out.find("blk.3.attn_q.weight"), std::string::npos);  // filtered out
    EXPECT_NE(r.out.find("bf16"), std::string::npos);
}

TEST(InspectCli, ReadsEveryFixtureInEveryView) {
    REQUIRE_FIXTURE("gguf");
    std::vector<fs::path> files;
    for (const char* dir : {"gguf", "quant", "llama-cpp"}) {
        for (const auto& e : fs::directory_iterator(fixture(dir))) {
            if (e.path().extension() == ".gguf") files.push_back(e.path());
        }
    }
    ASSERT_GE(files.size(), 6u);  // three models, the quantization vectors, two importance matrices
    for (const auto& f : files) {
        for (const char* view : {"", "--tensors --layers", "--json --tensors --layers"}) {
            const auto r = run_app("gguf-inspect", "'" + f.string() + "' " + view);
            EXPECT_EQ(r.status, 0) << f << " " << view << ": " << r.err;
            EXPECT_TRUE(r.err.empty()) << f << " " << view << ": " << r.err;
            EXPECT_NE(r.out.find("tensors"), std::string::npos) << f << " " << view;
        }
    }
}

TEST(InspectCli, JsonHoldsEveryTensor) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    auto r = run_app("gguf-inspect", fixture("gguf/tiny-dense-bf16.gguf").string() + " --json --tensors --checksums");
    ASSERT_EQ(r.status, 0) << r.err;
    size_t count = 0;
    for (size_t p = r.out.find("\"xxh64\""); p != std::string::npos; p = r.out.find("\"xxh64\"", p + 1)) ++count;
    EXPECT_EQ(count, 57u);  // 6 blocks x 9 tensors + embedding, output norm, output
    EXPECT_NE(r.out.find("\"architecture\": \"llama\""), std::string::npos);
}

TEST(InspectCli, JsonHoldsEverythingUnlessAskedForLess) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const std::string file = "'" + fixture("gguf/tiny-dense-bf16.gguf").string() + "'";
    const auto all = run_app("gguf-inspect", file + " --json");
    ASSERT_EQ(all.status, 0) << all.err;
    EXPECT_NE(all.out.find("\"tensors\": ["), std::string::npos);
    EXPECT_NE(all.out.find("\"layers\": ["), std::string::npos);
    const auto less = run_app("gguf-inspect", file + " --json --no-tensors");
    EXPECT_EQ(less.out.find("\"tensors\": ["), std::string::npos);
    // --tensors before the file lists every tensor instead of taking the file name as the filter
    const auto listed = run_app("gguf-inspect", "--tensors " + file);
    ASSERT_EQ(listed.status, 0) << listed.err;
    EXPECT_NE(listed.out.find("blk.5.ffn_down.weight"), std::string::npos);
    const auto filtered = run_app("gguf-inspect", "--tensors 'blk\\.5\\.' " + file);
    EXPECT_NE(filtered.out.find("blk.5.ffn_down.weight"), std::string::npos);
    EXPECT_EQ(filtered.out.find("blk.4.ffn_down.weight"), std::string::npos);
    // general.file_type with the name llama.cpp gives the id
    EXPECT_NE(run_app("gguf-inspect", file).out.find("32 (BF16)"), std::string::npos);
}

TEST(InspectCli, DiffReportsTypeAndMetadataChanges) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    auto a = fixture("gguf/tiny-dense-bf16.gguf").string();
    auto b = fixture("gguf/tiny-moe-bf16.gguf").string();
    auto r = run_app("gguf-inspect", "--diff " + a + " " + b);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("general.architecture"), std::string::npos);
    EXPECT_NE(r.out.find("blk.0.ffn_gate_exps.weight"), std::string::npos);
    r = run_app("gguf-inspect", "--diff " + a + " " + a);
    ASSERT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("no differences"), std::string::npos);
}
