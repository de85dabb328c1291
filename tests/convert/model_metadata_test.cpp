// general.name and general.size_label as llama.cpp derives them.
#include "convert/model_metadata.h"

#include <gtest/gtest.h>

using convert::model_title;

TEST(ModelTitle, TitleCasesLowerCaseWordsOnly) {
    EXPECT_EQ(model_title("tiny-dense"), "Tiny Dense");
    EXPECT_EQ(model_title("Qwen3-30B-A3B-Instruct-2507"), "Qwen3 30B A3B Instruct 2507");
    EXPECT_EQ(model_title("llama-3.1-8b-instruct"), "Llama 3.1 8b Instruct");  // sizes and versions keep their case
    EXPECT_EQ(model_title("mistral-7b-v0.3"), "Mistral 7b v0.3");
    EXPECT_EQ(model_title("qwen3moe"), "Qwen3Moe");  // str.title() starts a word after a digit
    EXPECT_EQ(model_title("my_model"), "My_Model");
    EXPECT_EQ(model_title("--x--"), "X");
}

namespace {

convert::PlannedTensor tensor(const std::string& name, std::vector<int64_t> shape) {
    convert::PlannedTensor t;
    t.name = name;
    t.shape = std::move(shape);
    return t;
}

}  // namespace

TEST(SizeLabel, RoundsToTwoSignificantDigits) {
    convert::TensorPlan p;
    p.tensors = {tensor("token_embd.weight", {4096, 256}), tensor("x.weight", {5770496})};
    EXPECT_EQ(convert::size_label(p), "6.8M");
    p.tensors = {tensor("x.weight", {68'200'000})};
    EXPECT_EQ(convert::size_label(p), "68M");
    p.tensors = {tensor("x.weight", {1'240'000'000})};
    EXPECT_EQ(convert::size_label(p), "1.2B");
    p.tensors = {tensor("x.weight", {999})};
    EXPECT_EQ(convert::size_label(p), "1.0K");
}

TEST(SizeLabel, MoeCountsOneExpertPath) {
    convert::TensorPlan p;
    // 16 experts of 3 x 256 x 256 per layer, 4 layers, plus 2902528 shared: 16x3.7M (tiny-moe).
    for (int l = 0; l < 4; ++l)
        for (const char* n : {"down", "gate", "up"})
            p.tensors.push_back(tensor("blk." + std::to_string(l) + ".ffn_" + n + "_exps.weight", {16, 256, 256}));
    p.tensors.push_back(tensor("shared.weight", {2902528}));
    EXPECT_EQ(convert::size_label(p), "16x3.7M");
}

// gpt-oss's expert biases are 2-D stacks [experts, rows]: gguf-py's count takes them as shared
// parameters, whole (the tiny gpt-oss reference is "8x323K" in llama.cpp's file, not 8x316K).
TEST(SizeLabel, TwoDimensionalExpertStacksCountAsShared) {
    convert::TensorPlan p;
    p.tensors = {tensor("blk.0.ffn_gate_exps.weight", {8, 96, 64}), tensor("blk.0.ffn_gate_exps.bias", {8, 96}),
                 tensor("shared.weight", {1000})};
    // 6144 per expert + 768 bias + 1000 shared = 7912 -> "8x7.9K" (the bias as one expert's share: 7.2K)
    EXPECT_EQ(convert::size_label(p), "8x7.9K");
}
