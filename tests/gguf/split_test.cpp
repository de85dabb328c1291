// Split GGUF models: naming, where the cuts go, writing shards, reading them back as one model
// (and refusing a lone shard), merging back to the original bytes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "gguf/error.h"
#include "gguf/split.h"
#include "gguf/writer.h"

namespace {

namespace fs = std::filesystem;

class SplitTest : public testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("gguf_split_test_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        // five f32 tensors of 1, 2, 3, 4, 5 rows of 8 values, each value naming its tensor and index
        gguf::Writer w(model().string());
        w.metadata().set("general.architecture", gguf::Value::string("llama"));
        w.metadata().set("general.name", gguf::Value::string("split me"));
        for (int t = 0; t < 5; ++t) w.add_tensor("t" + std::to_string(t), gguf::GgmlType::F32, {8, t + 1});
        for (int t = 0; t < 5; ++t) {
            std::vector<float> v(static_cast<size_t>(8 * (t + 1)));
            for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(t * 1000 + static_cast<int>(i));
            w.write_data({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
        }
        w.finish();
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path model() const { return dir_ / "model.gguf"; }
    static std::string bytes_of(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }
    fs::path dir_;
};

TEST(SplitNames, FollowLlamaCpp) {
    EXPECT_EQ(gguf::split_path("dir/Qwen3-Q4_K_M", 0, 3), "dir/Qwen3-Q4_K_M-00001-of-00003.gguf");
    const auto n = gguf::parse_split_path("dir/Qwen3-Q4_K_M-00002-of-00003.gguf");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->prefix, "dir/Qwen3-Q4_K_M");
    EXPECT_EQ(n->index, 1u);
    EXPECT_EQ(n->count, 3u);
    for (const char* bad : {"model.gguf", "m-00004-of-00003.gguf", "m-00000-of-00003.gguf", "m-0001-of-00003.gguf",
                            "m-00001-of-00003.bin", "-00001-of-00003.gguf"}) {
        EXPECT_FALSE(gguf::parse_split_path(bad)) << bad;
    }
}

TEST_F(SplitTest, CutsByTensorsAndBytes) {
    const gguf::File f = gguf::File::open(model().string());
    EXPECT_EQ(gguf::plan_split(f, {0, 2}), (std::vector<uint32_t>{0, 0, 1, 1, 2}));
    // padded sizes 32, 64, 96, 128, 160 bytes: at most 160 per shard
    EXPECT_EQ(gguf::plan_split(f, {160, 0}), (std::vector<uint32_t>{0, 0, 1, 2, 3}));
    // a tensor larger than the limit still gets a shard of its own
    EXPECT_EQ(gguf::plan_split(f, {40, 0}), (std::vector<uint32_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(gguf::plan_split(f, {}), (std::vector<uint32_t>(5, 0)));
}

TEST_F(SplitTest, ShardsOpenAsOneModelAndMergeBackToTheSameBytes) {
    const gguf::File whole = gguf::File::open(model().string());
    const auto paths = gguf::write_split(whole, (dir_ / "model").string(), {0, 2});
    ASSERT_EQ(paths.size(), 3u);
    EXPECT_EQ(paths[2], (dir_ / "model-00003-of-00003.gguf").string());

    const gguf::File second = gguf::File::open_single(paths[1]);
    EXPECT_EQ(second.metadata().get_u32_or("split.no", 99), 1u);
    EXPECT_FALSE(second.metadata().contains("general.name"));  // only the first shard has the metadata
    EXPECT_EQ(second.tensors().size(), 2u);

    const gguf::File split = gguf::File::open(paths[0]);
    EXPECT_EQ(split.n_shards(), 3u);
    EXPECT_EQ(split.shard_path(2), paths[2]);
    ASSERT_EQ(split.tensors().size(), 5u);
    EXPECT_EQ(split.metadata().get_string_or("general.name", ""), "split me");
    for (const auto& t : whole.tensors()) {
        const gguf::TensorInfo& s = split.tensor(t.name);
        const auto a = whole.tensor_data(t), b = split.tensor_data(s);
        ASSERT_EQ(a.size(), b.size());
        EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << t.name;
    }
    EXPECT_EQ(split.tensor("t4").shard, 2u);
    EXPECT_GT(split.file_size(), whole.file_size());  // three headers

    const fs::path merged = dir_ / "merged.gguf";
    gguf::write_merged(split, merged.string());
    EXPECT_EQ(bytes_of(merged), bytes_of(model()));
}

TEST_F(SplitTest, ALoneOrBrokenShardIsRefused) {
    const auto paths = gguf::write_split(gguf::File::open(model().string()), (dir_ / "model").string(), {0, 2});
    try {
        gguf::File::open(paths[1]);
        FAIL() << "a second shard opened as a whole model";
    } catch (const gguf::Error& e) {
        EXPECT_NE(std::string(e.what()).find("shard 2 of a 3-file split model; open the first file (" + paths[0]),
                  std::string::npos)
            << e.what();
    }
    // a renamed first shard cannot find the others
    const fs::path renamed = dir_ / "renamed.gguf";
    fs::copy_file(paths[0], renamed);
    EXPECT_THROW(gguf::File::open(renamed.string()), gguf::Error);
    // a missing shard names its path
    fs::remove(paths[2]);
    try {
        gguf::File::open(paths[0]);
        FAIL() << "opened with a shard missing";
    } catch (const gguf::Error& e) {
        EXPECT_NE(std::string(e.what()).find(paths[2]), std::string::npos) << e.what();
    }
    // a shard in the wrong place
    fs::copy_file(paths[1], paths[2]);
    try {
        gguf::File::open(paths[0]);
        FAIL() << "opened with shard 2 in place of shard 3";
    } catch (const gguf::Error& e) {
        EXPECT_NE(std::string(e.what()).find("expected shard 3 of 3"), std::string::npos) << e.what();
    }
}

TEST_F(SplitTest, RefusesToWriteOverItsInput) {
    const auto paths = gguf::write_split(gguf::File::open(model().string()), (dir_ / "model").string(), {0, 3});
    const gguf::File split = gguf::File::open(paths[0]);
    EXPECT_THROW(gguf::write_merged(split, paths[1]), gguf::Error);
    EXPECT_THROW(gguf::write_split(split, (dir_ / "model").string(), {0, 3}), gguf::Error);
}

}  // namespace
