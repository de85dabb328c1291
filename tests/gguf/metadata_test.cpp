#include "gguf/metadata.h"

#include <gtest/gtest.h>

#include "gguf/error.h"

using namespace gguf;

TEST(Metadata, TypedAccessors) {
    Metadata m;
    m.set("a.u32", Value::u32(7));
    m.set("a.i8", Value::i8(-3));
    m.set("a.f32", Value::f32(1.5f));
    m.set("a.str", Value::string("llama"));
    m.set("a.arr", Value::string_array({"x", "y"}));
    EXPECT_EQ(m.get_u32("a.u32"), 7u);
    EXPECT_EQ(m.get_i64("a.i8"), -3);
    EXPECT_FLOAT_EQ(m.get_f32("a.f32"), 1.5f);
    EXPECT_FLOAT_EQ(m.get_f32("a.u32"), 7.0f);  // integers widen to floats
    EXPECT_EQ(m.get_string("a.str"), "llama");
    EXPECT_EQ(m.get_string_array("a.arr"), (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(m.get_u32_or("missing", 9), 9u);
}

TEST(Metadata, ErrorsNameTheKey) {
    Metadata m;
    m.set("general.architecture", Value::u32(1));
    m.set("neg", Value::i32(-1));
    try {
        m.get_string("general.architecture");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos);
    }
    EXPECT_THROW(m.get_u32("missing.key"), Error);
    EXPECT_THROW(m.get_u64("neg"), Error);
    m.set("big", Value::u64(1ull << 40));
    EXPECT_THROW(m.get_u32("big"), Error);
}

TEST(Metadata, SetKeepsOrderAndReplaces) {
    Metadata m;
    m.set("b", Value::u8(1));
    m.set("a", Value::u8(2));
    m.set("b", Value::u8(3));
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m.entries()[0].first, "b");
    EXPECT_EQ(m.get_u32("b"), 3u);
    EXPECT_TRUE(m.erase("b"));
    EXPECT_EQ(m.get_u32("a"), 2u);
    EXPECT_FALSE(m.contains("b"));
}

TEST(Metadata, DisplayPreviewsLongArrays) {
    std::vector<std::string> vocab(1000, "tok");
    std::string s = Value::string_array(vocab).to_display(3);
    EXPECT_EQ(s, "[1000 x string] \"tok\", \"tok\", \"tok\", ...");
}
