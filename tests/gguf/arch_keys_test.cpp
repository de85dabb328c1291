// gguf::ArchKeys: the hyper-parameter reader the recipes and the runtime share.
#include "gguf/arch_keys.h"

#include <gtest/gtest.h>

#include "gguf/error.h"

namespace {

gguf::Metadata qwen() {
    gguf::Metadata md;
    md.set("general.architecture", gguf::Value::string("qwen3moe"));
    md.set("qwen3moe.block_count", gguf::Value::u32(4));
    md.set("qwen3moe.attention.head_count", gguf::Value::i32_array({16, 16, 8, 16}));
    md.set("qwen3moe.rope.freq_base", gguf::Value::f32(1e6f));
    md.set("qwen3moe.expert_count", gguf::Value::string("many"));
    md.set("qwen3moe.feed_forward_length", gguf::Value::i32_array({-1}));
    return md;
}

TEST(ArchKeys, PrefixesTheArchitecture) {
    const gguf::Metadata md = qwen();
    const gguf::ArchKeys k(md);
    EXPECT_EQ(k.arch(), "qwen3moe");
    EXPECT_EQ(k.key("block_count"), "qwen3moe.block_count");
    EXPECT_EQ(k.u64("block_count"), 4u);
    EXPECT_EQ(k.f64("rope.freq_base"), 1e6);
    EXPECT_EQ(k.f64("block_count"), 4.0);
    EXPECT_EQ(k.u64("absent"), std::nullopt);
    EXPECT_EQ(k.find("absent"), nullptr);
}

TEST(ArchKeys, CountsAreScalarOrPerLayer) {
    const gguf::Metadata md = qwen();
    const gguf::ArchKeys k(md);
    EXPECT_EQ(k.counts("block_count"), (std::vector<uint64_t>{4}));
    EXPECT_EQ(k.counts("attention.head_count"), (std::vector<uint64_t>{16, 16, 8, 16}));
    EXPECT_TRUE(k.counts("absent").empty());
}

TEST(ArchKeys, WrongKindsNameTheKey) {
    const gguf::Metadata md = qwen();
    const gguf::ArchKeys k(md);
    try {
        (void)k.u64("expert_count");
        FAIL();
    } catch (const gguf::Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("metadata qwen3moe.expert_count: ", 0), 0u) << e.what();
    }
    EXPECT_THROW((void)k.counts("feed_forward_length"), gguf::Error);  // negative
    EXPECT_THROW((void)k.counts("expert_count"), gguf::Error);
}

TEST(ArchKeys, NoArchitectureMeansEmptyPrefix) {
    gguf::Metadata md;
    md.set("general.architecture", gguf::Value::u32(7));
    const gguf::ArchKeys k(md);
    EXPECT_EQ(k.arch(), "");
    EXPECT_EQ(k.u64("block_count"), std::nullopt);
}

}  // namespace
