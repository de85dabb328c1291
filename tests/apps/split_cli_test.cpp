// Split models end to end: gguf-split cuts and merges, gguf-run and gguf-inspect read a split model
// through its first file and refuse a lone shard, gguf-quantize reads and writes shards.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fixtures.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;
using testing_support::run_app;

const char* kMoe = "gguf/tiny-moe-bf16.gguf";

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::string bytes_of(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

class SplitCli : public testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("gguf_split_cli_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(SplitCli, SplitRunInspectMerge) {
    REQUIRE_FIXTURE(kMoe);
    const auto split = run_app("gguf-split", "--split-max-tensors 20 " + q(fixture(kMoe)) + " " + q(dir_ / "moe"));
    ASSERT_EQ(split.status, 0) << split.err;
    const fs::path first = dir_ / "moe-00001-of-00003.gguf";
    ASSERT_TRUE(fs::exists(dir_ / "moe-00003-of-00003.gguf")) << split.out;

    const std::string gen = " -p 'def add(a, b):' -n 8 --temp 0 -t 1 --json";
    const auto whole = run_app("gguf-run", "-m " + q(fixture(kMoe)) + gen);
    const auto sharded = run_app("gguf-run", "-m " + q(first) + gen);
    ASSERT_EQ(sharded.status, 0) << sharded.err;
    const auto text = [](const std::string& json) { return json.substr(0, json.find("\"prompt_tokens_per_second\"")); };
    EXPECT_EQ(text(sharded.out), text(whole.out));

    const auto lone = run_app("gguf-run", "-m " + q(dir_ / "moe-00002-of-00003.gguf") + gen);
    EXPECT_EQ(lone.status, 1);
    EXPECT_NE(lone.err.find("shard 2 of a 3-file split model; open the first file"), std::string::npos) << lone.err;

    const auto info = run_app("gguf-inspect", q(first));
    EXPECT_EQ(info.status, 0) << info.err;
    EXPECT_NE(info.out.find("tensors:       51"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("split:         3 files"), std::string::npos) << info.out;

    const fs::path merged = dir_ / "merged.gguf";
    const auto merge = run_app("gguf-split", "--merge " + q(first) + " " + q(merged));
    ASSERT_EQ(merge.status, 0) << merge.err;
    EXPECT_EQ(bytes_of(merged), bytes_of(fixture(kMoe)));
}

TEST_F(SplitCli, QuantizeReadsAndWritesShards) {
    REQUIRE_FIXTURE(kMoe);
    ASSERT_EQ(run_app("gguf-split", "--split-max-size 10M " + q(fixture(kMoe)) + " " + q(dir_ / "in")).status, 0);
    const fs::path first = dir_ / "in-00001-of-00004.gguf";  // 31 MB of bf16 in <= 10 MB shards
    ASSERT_TRUE(fs::exists(first));
    const auto kept = run_app("gguf-quantize", "--keep-split " + q(first) + " " + q(dir_ / "out.gguf") + " Q8_0 1");
    ASSERT_EQ(kept.status, 0) << kept.err;
    EXPECT_NE(kept.out.find("shards: 4"), std::string::npos) << kept.out;
    EXPECT_TRUE(fs::exists(dir_ / "out-00004-of-00004.gguf"));
    EXPECT_FALSE(fs::exists(dir_ / "out.gguf"));
    EXPECT_FALSE(fs::exists(dir_ / "out.whole.tmp.gguf"));
    const auto run = run_app("gguf-run", "-m " + q(dir_ / "out-00001-of-00004.gguf") + " -p hi -n 2 -t 1 --temp 0");
    EXPECT_EQ(run.status, 0) << run.err;

    const auto cut = run_app("gguf-quantize", "--split-max-size 5M " + q(fixture(kMoe)) + " " + q(dir_ / "q.gguf") + " Q8_0 1");
    ASSERT_EQ(cut.status, 0) << cut.err;
    // 16.5 MB of q8_0 in shards of at most 5 MB: no fewer than 4
    const size_t at = cut.out.find("shards: ");
    ASSERT_NE(at, std::string::npos) << cut.out;
    const int n = std::stoi(cut.out.substr(at + 8));
    EXPECT_GE(n, 4);
    char first_out[64];
    std::snprintf(first_out, sizeof first_out, "q-00001-of-%05d.gguf", n);
    const auto info = run_app("gguf-inspect", q(dir_ / first_out) + " --json");
    EXPECT_EQ(info.status, 0) << info.err;
    EXPECT_NE(info.out.find("\"tensor_count\": 51"), std::string::npos);
}

TEST_F(SplitCli, UsageErrors) {
    const auto size = run_app("gguf-split", "--split-max-size 5X in.gguf out");
    EXPECT_EQ(size.status, 2);
    EXPECT_NE(size.err.find("--split-max-size"), std::string::npos) << size.err;
    EXPECT_EQ(run_app("gguf-split", "--merge --split-max-tensors 3 a.gguf b.gguf").status, 2);
    EXPECT_EQ(run_app("gguf-split", "in.gguf").status, 2);
    EXPECT_EQ(run_app("gguf-split", "--no-tensor-first-split in.gguf out").status, 2);
    REQUIRE_FIXTURE(kMoe);
    const auto keep = run_app("gguf-quantize", "--keep-split " + q(fixture(kMoe)) + " " + q(dir_ / "o.gguf") + " Q8_0");
    EXPECT_EQ(keep.status, 2);
    EXPECT_NE(keep.err.find("is not split"), std::string::npos) << keep.err;
    EXPECT_TRUE(fs::is_empty(dir_));
}

// The hardening rules of every output (docs/quantize.md) hold for shards: an existing output is
// replaced only with --force, and the outputs are checked before the first is written.
TEST_F(SplitCli, ExistingOutputsNeedForce) {
    REQUIRE_FIXTURE(kMoe);
    const std::string args = "--split-max-tensors 20 " + q(fixture(kMoe)) + " " + q(dir_ / "moe");
    ASSERT_EQ(run_app("gguf-split", args).status, 0);
    const fs::path third = dir_ / "moe-00003-of-00003.gguf";
    fs::remove(dir_ / "moe-00001-of-00003.gguf");
    fs::remove(dir_ / "moe-00002-of-00003.gguf");
    std::ofstream(third, std::ios::trunc) << "old";
    const auto again = run_app("gguf-split", args);
    EXPECT_EQ(again.status, 1);
    EXPECT_NE(again.err.find("moe-00003-of-00003.gguf: exists; pass --force to replace it"), std::string::npos) << again.err;
    EXPECT_EQ(bytes_of(third), "old");
    EXPECT_FALSE(fs::exists(dir_ / "moe-00001-of-00003.gguf"));  // checked before the first shard is written
    ASSERT_EQ(run_app("gguf-split", "--force " + args).status, 0);
    EXPECT_GT(fs::file_size(third), 1000u);

    const fs::path merged = dir_ / "merged.gguf";
    std::ofstream(merged) << "old";
    const auto merge = run_app("gguf-split", "--merge " + q(dir_ / "moe-00001-of-00003.gguf") + " " + q(merged));
    EXPECT_EQ(merge.status, 1);
    EXPECT_NE(merge.err.find("--force"), std::string::npos) << merge.err;
    ASSERT_EQ(run_app("gguf-split", "--merge --force " + q(dir_ / "moe-00001-of-00003.gguf") + " " + q(merged)).status, 0);
    EXPECT_EQ(bytes_of(merged), bytes_of(fixture(kMoe)));
    // the output may never be one of the input's shards, --force or not
    const auto onto = run_app("gguf-split", "--merge --force " + q(dir_ / "moe-00001-of-00003.gguf") + " " + q(third));
    EXPECT_EQ(onto.status, 1);
}

}  // namespace
