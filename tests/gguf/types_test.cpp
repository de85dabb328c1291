#include "gguf/types.h"

#include <gtest/gtest.h>

#include <sstream>

#include "gguf/error.h"

using namespace gguf;

TEST(Types, BlockGeometryMatchesGgml) {
    struct Case { GgmlType t; uint32_t block, bytes; };
    const Case cases[] = {
        {GgmlType::F32, 1, 4},      {GgmlType::BF16, 1, 2},      {GgmlType::Q4_0, 32, 18},
        {GgmlType::Q8_0, 32, 34},   {GgmlType::Q4_K, 256, 144},  {GgmlType::Q6_K, 256, 210},
        {GgmlType::IQ4_XS, 256, 136}, {GgmlType::MXFP4, 32, 17}, {GgmlType::TQ1_0, 256, 54},
        {GgmlType::IQ1_M, 256, 56}, {GgmlType::IQ2_XXS, 256, 66}, {GgmlType::IQ3_S, 256, 110},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(type_traits(c.t).block_size, c.block) << type_name(c.t);
        EXPECT_EQ(type_traits(c.t).type_size, c.bytes) << type_name(c.t);
    }
}

TEST(Types, UnknownIdsAreRejected) {
    EXPECT_EQ(find_type_traits(4), nullptr);   // retired Q4_2
    EXPECT_EQ(find_type_traits(31), nullptr);  // retired Q4_0_4_4
    EXPECT_EQ(find_type_traits(1000), nullptr);
    EXPECT_THROW(type_traits(static_cast<GgmlType>(77)), Error);
}

TEST(Types, StreamsAsTheirName) {
    std::ostringstream os;
    os << gguf::GgmlType::Q4_K << " " << static_cast<gguf::GgmlType>(4);
    EXPECT_EQ(os.str(), "q4_K type#4");  // id 4 was Q4_2, removed from ggml
}

TEST(Types, NamesRoundTripCaseInsensitively) {
    for (auto* t = all_types_begin(); t != all_types_end(); ++t) {
        EXPECT_EQ(type_from_name(t->name), t->type);
    }
    EXPECT_EQ(type_from_name("Q4_K"), GgmlType::Q4_K);
    EXPECT_EQ(type_from_name("MXFP4"), GgmlType::MXFP4);
    EXPECT_FALSE(type_from_name("q9_9").has_value());
}

TEST(Types, RowSize) {
    EXPECT_EQ(row_size(GgmlType::Q4_K, 4096), 4096u / 256 * 144);
    EXPECT_EQ(row_size(GgmlType::F16, 7), 14u);
    EXPECT_THROW(row_size(GgmlType::Q4_0, 33), Error);
}
