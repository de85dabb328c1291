// gguf-quantize's sensitivity-driven mode end to end on tiny-dense with a small calibration text: the
// file fits the target, --dry-run shows each tensor's predicted cost, the calibration cache is reused
// for the same model and text and not for another text, and the --verify-kld gate removes a failing
// output with exit status 1. Kept small (64-token chunks, one per measurement, two candidate types).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "fixtures.h"
#include "gguf/file.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;
using testing_support::run_app;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

class QuantizeTarget : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
        REQUIRE_FIXTURE("text/calibration.txt");
        dir_ = fs::temp_directory_path() / ("quantize-target-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        std::ifstream in(fixture("text/calibration.txt"), std::ios::binary);
        std::string text(4000, '\0');
        in.read(text.data(), static_cast<std::streamsize>(text.size()));
        std::ofstream(dir_ / "calib.txt", std::ios::binary) << text;
        text[100] = text[100] == 'x' ? 'y' : 'x';
        std::ofstream(dir_ / "other.txt", std::ios::binary) << text;
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string common(const std::string& text = "calib.txt") const {
        // layers 1-5 fixed by the user's pattern: only the 9 other matrices are measured and chosen
        return "--calibration " + q(dir_ / text) + " -c 64 --calibration-chunks 1 --candidate-types q4_K,q8_0 --cache-dir " +
               q(dir_ / "cache") + " --tensor-type 'blk\\.[1-5]\\.=q4_K' ";
    }
    std::string model() const { return q(fixture("gguf/tiny-dense-bf16.gguf")) + " "; }
    size_t cache_entries() const {
        return fs::exists(dir_ / "cache") ? static_cast<size_t>(std::distance(fs::directory_iterator(dir_ / "cache"),
                                                                                fs::directory_iterator{}))
                                          : 0;
    }
    fs::path dir_;
};

TEST_F(QuantizeTarget, FitsTheSizeReusesTheCacheAndGates) {
    // the 9 chosen matrices all at q4_K give ~4.17 MB, all at q8_0 ~5.6 MB: 4.8 MB needs a mixture
    const uint64_t target = 4800000;
    const auto dry = run_app("gguf-quantize", "--dry-run --target-size " + std::to_string(target) + " " + common() + model() + "Q4_K_M 2");
    ASSERT_EQ(dry.status, 0) << dry.err;
    EXPECT_NE(dry.err.find("imatrix collected"), std::string::npos) << dry.err;
    EXPECT_NE(dry.err.find("sensitivities measured"), std::string::npos) << dry.err;
    EXPECT_NE(dry.out.find("predicted KLD"), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("-> q8_0"), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("-> q4_K     "), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("(--tensor-type)"), std::string::npos) << dry.out;
    EXPECT_EQ(cache_entries(), 2u);  // the imatrix and the sensitivities

    // the same model and text: both from the cache, and the file has the size asked for
    const fs::path out = dir_ / "out.gguf";
    const auto real = run_app("gguf-quantize", "--target-size " + std::to_string(target) + " " + common() + model() + q(out) + " Q4_K_M 2");
    ASSERT_EQ(real.status, 0) << real.err;
    EXPECT_NE(real.err.find("imatrix read from the cache"), std::string::npos) << real.err;
    EXPECT_NE(real.err.find("sensitivities read from the cache"), std::string::npos) << real.err;
    EXPECT_LE(fs::file_size(out), target);
    // at most one upgrade's bytes left unused: token_embd or output from q4_K to q8_0 (524 KB) is the largest
    EXPECT_GE(fs::file_size(out), target - 524288);
    EXPECT_NO_THROW(gguf::File::open(out.string()));

    // another text: measured again, beside the first entries
    const auto other = run_app("gguf-quantize", "--dry-run --target-bpw 5 " + common("other.txt") + model() + "Q4_K_M 2");
    ASSERT_EQ(other.status, 0) << other.err;
    EXPECT_NE(other.err.find("sensitivities measured"), std::string::npos) << other.err;
    EXPECT_EQ(cache_entries(), 4u);

    // the gate: a bound the quant cannot meet removes it and fails; a loose one keeps it
    const fs::path gated = dir_ / "gated.gguf";
    const std::string gate = "--verify-text " + q(dir_ / "other.txt") + " --verify-chunks 2 ";
    const auto fail = run_app("gguf-quantize", "--target-size " + std::to_string(target) + " " + common() + gate +
                                                   "--verify-kld 1e-9 " + model() + q(gated) + " Q4_K_M 2");
    EXPECT_EQ(fail.status, 1) << fail.err;
    EXPECT_NE(fail.err.find("exceeds --verify-kld"), std::string::npos) << fail.err;
    EXPECT_FALSE(fs::exists(gated));
    const auto pass = run_app("gguf-quantize", "--target-size " + std::to_string(target) + " " + common() + gate +
                                                   "--verify-kld 1 " + model() + q(gated) + " Q4_K_M 2");
    EXPECT_EQ(pass.status, 0) << pass.err;
    EXPECT_TRUE(fs::exists(gated));
}

TEST_F(QuantizeTarget, BadTargetsAreErrors) {
    auto expect = [&](const std::string& args, int status, const std::string& needle) {
        const auto r = run_app("gguf-quantize", args);
        EXPECT_EQ(r.status, status) << args << "\n" << r.err;
        EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    };
    expect("--dry-run --target-bpw 4 --max-kld 0.1 " + common() + model() + "Q4_K_M", 2, "one of");
    expect("--dry-run --target-bpw 4 " + model() + "Q4_K_M", 2, "--calibration");
    expect("--dry-run --target-size 4Q " + common() + model() + "Q4_K_M", 2, "unit");
    expect("--dry-run --target-bpw 40 " + common() + model() + "Q4_K_M", 2, "--target-bpw");
    expect("--dry-run --verify-kld 0.1 " + model() + "Q4_K_M", 2, "--verify-text");
    // smaller than the tensors the recipe keeps plus the least the candidates allow
    expect("--dry-run --target-size 1000000 " + common() + model() + "Q4_K_M", 1, "bytes");
}

// llama.cpp reads a file of types chosen per tensor (issue 16: "the output loads in llama.cpp") and
// evaluates it as gguf-run does: the same perplexity within 0.1%. Runs only where LLAMA_CPP_BIN names
// the folder holding llama-perplexity (e.g. llama.cpp/build/bin); docs/quantize.md has the figures.
TEST_F(QuantizeTarget, MixedOutputRunsInLlamaCppWithTheSamePerplexity) {
    const char* bin = std::getenv("LLAMA_CPP_BIN");
    if (!bin || !*bin) GTEST_SKIP() << "set LLAMA_CPP_BIN to the folder holding llama-perplexity";
    REQUIRE_FIXTURE("text/dev_eval.txt");
    const fs::path out = dir_ / "mixed.gguf";
    const auto made = run_app("gguf-quantize", "--target-bpw 5 --calibration " + q(dir_ / "calib.txt") +
                                                   " -c 64 --calibration-chunks 1 --candidate-types q3_K,q4_K,iq4_xs,q5_K,q6_K,q8_0"
                                                   " --no-cache " + model() + q(out) + " Q4_K_M 2");
    ASSERT_EQ(made.status, 0) << made.err;
    std::set<gguf::GgmlType> types;
    const gguf::File mixed = gguf::File::open(out.string());
    for (const auto& t : mixed.tensors()) {
        if (t.dims.size() == 2) types.insert(t.type);
    }
    EXPECT_GE(types.size(), 3u) << "not a mixture";

    const std::string args = "-m " + q(out) + " -f " + q(fixture("text/dev_eval.txt")) + " -c 128 -b 128 --chunks 8 -t 2";
    const auto ours = run_app("gguf-run", "perplexity " + args);
    ASSERT_EQ(ours.status, 0) << ours.err;
    const auto theirs = testing_support::run_binary(fs::path(bin) / "llama-perplexity", args + " -ngl 0");
    ASSERT_EQ(theirs.status, 0) << theirs.err;
    auto final_ppl = [](const std::string& text) {
        const size_t at = text.find("Final estimate: PPL = ");
        return at == std::string::npos ? -1.0 : std::stod(text.substr(at + 22));
    };
    const double a = final_ppl(ours.out + ours.err), b = final_ppl(theirs.out + theirs.err);
    ASSERT_GT(a, 0) << ours.out << ours.err;
    ASSERT_GT(b, 0) << theirs.out << theirs.err;
    EXPECT_NEAR(a, b, 1e-3 * b) << "gguf-run " << a << ", llama-perplexity " << b;
}

}  // namespace
