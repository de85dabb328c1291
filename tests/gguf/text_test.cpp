// gguf/text.h: the one size and shape formatter every tool's reports use.
#include "gguf/text.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(Text, BytesInBinaryUnits) {
    EXPECT_EQ(gguf::format_bytes(0), "0 B");
    EXPECT_EQ(gguf::format_bytes(1023), "1023 B");
    EXPECT_EQ(gguf::format_bytes(1024), "1.00 KiB");
    EXPECT_EQ(gguf::format_bytes(1536), "1.50 KiB");
    EXPECT_EQ(gguf::format_bytes(12u << 20), "12.00 MiB");
    EXPECT_EQ(gguf::format_bytes(uint64_t{139} << 30), "139.00 GiB");
    EXPECT_EQ(gguf::format_bytes(uint64_t{3} << 40), "3.00 TiB");
    EXPECT_EQ(gguf::format_bytes(uint64_t{5000} << 40), "5000.00 TiB");  // no unit above TiB
}

TEST(Text, Shapes) {
    EXPECT_EQ(gguf::shape_text(std::vector<int64_t>{}), "[]");
    EXPECT_EQ(gguf::shape_text(std::vector<int64_t>{256}), "[256]");
    EXPECT_EQ(gguf::shape_text(std::vector<int64_t>{256, 4096, 8}), "[256, 4096, 8]");
}

}  // namespace
