// llama-imatrix's own output for the tiny fixtures: every entry read, stacked expert entries as
// one vector per expert, and values equal to the stored sums over the stored counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "fixtures.h"
#include "gguf/file.h"
#include "quant/imatrix.h"

namespace {

using testing_support::fixture;

float stored_f32(const gguf::File& f, const std::string& tensor, size_t i) {
    float v;
    std::memcpy(&v, f.tensor_data(f.tensor(tensor)).data() + i * sizeof(float), sizeof v);
    return v;
}

TEST(ImatrixFixtures, MoeEntriesHaveOneVectorPerExpert) {
    REQUIRE_FIXTURE("llama-cpp/imatrix-moe.gguf");
    const std::string path = fixture("llama-cpp/imatrix-moe.gguf").string();
    const quant::Imatrix im = quant::Imatrix::load(path);
    EXPECT_EQ(im.entries().size(), 32u);  // 4 layers x (q, k, v, output, router, gate, up, down)
    EXPECT_EQ(im.chunk_count(), 325u);
    EXPECT_EQ(im.chunk_size(), 256u);
    ASSERT_EQ(im.datasets().size(), 1u);
    EXPECT_EQ(im.datasets()[0], "/work/ref/text/calibration.txt");

    const auto* down = im.find("blk.2.ffn_down_exps.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->values.size(), 256u * 16u);
    EXPECT_EQ(im.find("blk.2.attn_q.weight")->values.size(), 256u);

    // Each expert's values are its sums over its own count.
    const gguf::File raw = gguf::File::open(path);
    for (size_t expert : {0u, 7u, 15u}) {
        const float count = stored_f32(raw, "blk.2.ffn_down_exps.weight.counts", expert);
        ASSERT_GT(count, 0.0f);
        for (size_t i : {0u, 100u, 255u}) {
            const float sum = stored_f32(raw, "blk.2.ffn_down_exps.weight.in_sum2", expert * 256 + i);
            EXPECT_EQ(down->values[expert * 256 + i], sum / std::round(count)) << expert << " " << i;
        }
    }
    for (const auto& [name, entry] : im.entries()) {
        for (float v : entry.values) ASSERT_TRUE(std::isfinite(v) && v >= 0) << name;
    }
}

TEST(ImatrixFixtures, DenseEntriesCoverEveryMatrix) {
    REQUIRE_FIXTURE("llama-cpp/imatrix-dense.gguf");
    const quant::Imatrix im = quant::Imatrix::load(fixture("llama-cpp/imatrix-dense.gguf").string());
    EXPECT_EQ(im.entries().size(), 42u);  // 6 layers x 7 matrices
    EXPECT_EQ(im.find("blk.5.ffn_down.weight")->values.size(), 768u);
    EXPECT_EQ(im.find("token_embd.weight"), nullptr);
    EXPECT_EQ(im.find("output.weight"), nullptr);
}

}  // namespace
