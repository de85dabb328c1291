// Writing importance matrices in llama.cpp's formats and combining them: what is written reads back
// (raw and as the quantizer's means), files add up, and mismatches are errors naming the entry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "gguf/file.h"
#include "quant/imatrix.h"
#include "quant/imatrix_data.h"
#include "quant/quant.h"

namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / ("imatrix-data-test-" + std::to_string(::getpid()) + "-" + name);
}

// One dense entry of 4 columns and one stacked entry of 2 experts x 3 columns, the second expert unused.
quant::ImatrixData sample() {
    quant::ImatrixData d;
    d.entries["blk.0.attn_q.weight"] = {{4.0, 8.0, 12.0, 2.0}, {4}};
    d.entries["blk.0.ffn_up_exps.weight"] = {{3.0, 6.0, 9.0, 0.0, 0.0, 0.0}, {3, 0}};
    d.datasets = {"calib.txt"};
    d.chunk_count = 2;
    d.chunk_size = 2;
    return d;
}

TEST(ImatrixData, GgufRoundTripsInLlamaCppLayout) {
    const fs::path p = temp_path("a.gguf");
    sample().write_gguf(p.string());
    const gguf::File f = gguf::File::open(p.string());
    EXPECT_EQ(f.metadata().get_string("general.type"), "imatrix");
    EXPECT_EQ(f.metadata().get_u32("imatrix.chunk_count"), 2u);
    EXPECT_EQ(f.metadata().get_u32("imatrix.chunk_size"), 2u);
    ASSERT_EQ(f.tensors().size(), 4u);  // name order, sums then counts
    EXPECT_EQ(f.tensors()[0].name, "blk.0.attn_q.weight.in_sum2");
    EXPECT_EQ(f.tensors()[0].dims, (std::vector<int64_t>{4}));
    EXPECT_EQ(f.tensors()[1].name, "blk.0.attn_q.weight.counts");
    EXPECT_EQ(f.tensors()[1].dims, (std::vector<int64_t>{1}));
    EXPECT_EQ(f.tensors()[2].dims, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(f.tensors()[3].dims, (std::vector<int64_t>{1, 2}));

    const quant::ImatrixData back = quant::ImatrixData::load(p.string());
    EXPECT_EQ(back.entries.at("blk.0.ffn_up_exps.weight").sums, sample().entries.at("blk.0.ffn_up_exps.weight").sums);
    EXPECT_EQ(back.entries.at("blk.0.ffn_up_exps.weight").counts, (std::vector<int64_t>{3, 0}));
    EXPECT_EQ(back.datasets, (std::vector<std::string>{"calib.txt"}));

    // the quantizer's view: sums over counts, 1 for the expert that saw nothing
    const quant::Imatrix im = quant::Imatrix::load(p.string());
    EXPECT_EQ(im.find("blk.0.attn_q.weight")->values, (std::vector<float>{1, 2, 3, 0.5f}));
    EXPECT_EQ(im.find("blk.0.ffn_up_exps.weight")->values, (std::vector<float>{1, 2, 3, 1, 1, 1}));
    fs::remove(p);
}

TEST(ImatrixData, LegacyStoresMeansTimesCallsAndReadsBackTheSameMeans) {
    const fs::path p = temp_path("a.dat");
    sample().write_legacy(p.string());
    const quant::Imatrix im = quant::Imatrix::load(p.string());
    EXPECT_TRUE(im.is_legacy());
    EXPECT_EQ(im.chunk_count(), 2u);
    ASSERT_EQ(im.datasets().size(), 1u);
    EXPECT_EQ(im.datasets()[0], "calib.txt");
    EXPECT_EQ(im.find("blk.0.attn_q.weight")->values, (std::vector<float>{1, 2, 3, 0.5f}));
    EXPECT_EQ(im.find("blk.0.ffn_up_exps.weight")->values, (std::vector<float>{1, 2, 3, 1, 1, 1}));

    // combined again, a legacy file's calls stand for chunks of the given size (4 tokens = 2 calls x 2)
    quant::ImatrixData d = quant::ImatrixData::load(p.string());
    EXPECT_THROW(quant::ImatrixData().merge(d, "a.dat"), quant::Error);
    d.to_raw(2);
    EXPECT_EQ(d.entries.at("blk.0.attn_q.weight").counts, (std::vector<int64_t>{4}));
    EXPECT_EQ(d.entries.at("blk.0.attn_q.weight").sums, (std::vector<double>{4, 8, 12, 2}));
    fs::remove(p);
}

TEST(ImatrixData, MergeAddsSumsCountsChunksAndDatasets) {
    quant::ImatrixData a = sample();
    quant::ImatrixData b = sample();
    b.datasets = {"more.txt"};
    b.entries["blk.1.attn_q.weight"] = {{1.0}, {1}};
    a.merge(b, "b.gguf");
    EXPECT_EQ(a.entries.at("blk.0.attn_q.weight").sums, (std::vector<double>{8, 16, 24, 4}));
    EXPECT_EQ(a.entries.at("blk.0.ffn_up_exps.weight").counts, (std::vector<int64_t>{6, 0}));
    EXPECT_EQ(a.entries.count("blk.1.attn_q.weight"), 1u);
    EXPECT_EQ(a.chunk_count, 4u);
    EXPECT_EQ(a.datasets, (std::vector<std::string>{"calib.txt", "more.txt"}));

    // one count for all experts (older files) is spread over them
    quant::ImatrixData c;
    c.entries["blk.0.ffn_up_exps.weight"] = {{1, 1, 1, 1, 1, 1}, {5}};
    a.merge(c, "c.gguf");
    EXPECT_EQ(a.entries.at("blk.0.ffn_up_exps.weight").counts, (std::vector<int64_t>{11, 5}));

    quant::ImatrixData other;
    other.entries["blk.0.attn_q.weight"] = {{1.0, 2.0}, {1}};
    try {
        a.merge(other, "other.gguf");
        FAIL() << "a differently shaped entry merged";
    } catch (const quant::Error& e) {
        EXPECT_NE(std::string(e.what()).find("other.gguf: imatrix entry 'blk.0.attn_q.weight'"), std::string::npos)
            << e.what();
    }
}

TEST(ImatrixData, WritingRefusesAnInputAsOutput) {
    const fs::path p = temp_path("in.gguf");
    sample().write_gguf(p.string());
    gguf::OutputPolicy policy;
    policy.inputs = {p.string()};
    EXPECT_THROW(sample().write_gguf(p.string(), policy), quant::Error);
    EXPECT_THROW(sample().write_legacy(p.string(), policy), quant::Error);
    EXPECT_NO_THROW(quant::Imatrix::load(p.string()));  // untouched
    fs::remove(p);
}

}  // namespace
