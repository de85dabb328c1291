#include "gguf/summary.h"

#include <gtest/gtest.h>

#include "gguf_builder.h"

using namespace gguf;

TEST(Summary, RolesFollowLlamaCppNames) {
    EXPECT_EQ(tensor_role("token_embd.weight"), TensorRole::Embedding);
    EXPECT_EQ(tensor_role("output.weight"), TensorRole::Output);
    EXPECT_EQ(tensor_role("output_norm.weight"), TensorRole::Norm);
    EXPECT_EQ(tensor_role("blk.3.attn_q.weight"), TensorRole::Attention);
    EXPECT_EQ(tensor_role("blk.3.attn_k_norm.weight"), TensorRole::Norm);
    EXPECT_EQ(tensor_role("blk.3.ffn_down.weight"), TensorRole::FeedForward);
    EXPECT_EQ(tensor_role("blk.3.ffn_up_shexp.weight"), TensorRole::FeedForward);
    EXPECT_EQ(tensor_role("blk.3.ffn_gate_exps.weight"), TensorRole::Experts);
    EXPECT_EQ(tensor_role("blk.3.ffn_gate_inp.weight"), TensorRole::Router);
}

TEST(Summary, BlockIndex) {
    EXPECT_EQ(block_index("blk.12.attn_q.weight"), 12);
    EXPECT_FALSE(block_index("blk.x.attn_q.weight").has_value());
    EXPECT_FALSE(block_index("blk.12").has_value());
    EXPECT_FALSE(block_index("token_embd.weight").has_value());
}

TEST(Summary, CountsParametersBytesAndBlocks) {
    testing_support::GgufBuilder b;
    b.header(3, 1).kv_str("general.architecture", "llama");
    b.tensor("token_embd.weight", {32, 4}, 8, 0);        // q8_0: 4 blocks of 34 bytes
    b.tensor("blk.0.attn_q.weight", {8, 8}, 0, 160);     // f32: 256 bytes
    b.tensor("blk.0.ffn_up_exps.weight", {8, 2, 2}, 1, 416);  // f16: 64 bytes
    b.pad().zeros(480);
    File f = File::parse(b.bytes, "t.gguf");
    Summary s = summarize(f);
    EXPECT_EQ(s.architecture, "llama");
    EXPECT_EQ(s.parameters, 128u + 64u + 32u);
    EXPECT_EQ(s.tensor_bytes, 136u + 256u + 64u);
    EXPECT_EQ(s.by_type.at(GgmlType::Q8_0).bytes, 136u);
    EXPECT_EQ(s.by_block.at(0).attention, 256u);
    EXPECT_EQ(s.by_block.at(0).experts, 64u);
    EXPECT_EQ(s.outside_blocks.bytes, 136u);
    EXPECT_NEAR(s.bits_per_weight(), 8.0 * 456 / 224, 1e-9);
}
