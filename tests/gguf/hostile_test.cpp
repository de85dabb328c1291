// Malformed GGUF input: every defect is one gguf::Error naming the file and byte offset.
#include <gtest/gtest.h>

#include <regex>

#include "gguf/error.h"
#include "gguf/file.h"
#include "gguf_builder.h"

using namespace gguf;
using testing_support::GgufBuilder;

namespace {

// A small valid file: two metadata entries and two F32 tensors.
std::vector<uint8_t> valid_file() {
    GgufBuilder b;
    b.header(2, 2).kv_str("general.architecture", "llama").kv_u32("x.count", 3);
    b.tensor("a", {4, 2}, 0, 0).tensor("b", {8}, 0, 32);
    b.pad().zeros(64);
    return b.bytes;
}

// Parses and returns the error message, or "" if it parsed.
std::string parse_error_of(const std::vector<uint8_t>& bytes) {
    try {
        File::parse(bytes, "bad.gguf");
        return "";
    } catch (const Error& e) {
        return e.what();
    }
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle, uint64_t offset) {
    std::string msg = parse_error_of(bytes);
    ASSERT_FALSE(msg.empty()) << "expected an error containing '" << needle << "'";
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.gguf: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("at offset " + std::to_string(offset)), std::string::npos) << msg;
}

}  // namespace

TEST(Hostile, ValidFileParses) {
    File f = File::parse(valid_file(), "ok.gguf");
    EXPECT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.metadata().get_u32("x.count"), 3u);
}

TEST(Hostile, TruncationAtEveryOffsetIsAnError) {
    const std::vector<uint8_t> full = valid_file();
    const std::regex form("^bad\\.gguf: .+ at offset [0-9]+$");
    for (size_t n = 0; n < full.size(); ++n) {
        std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
        std::string msg = parse_error_of(cut);
        ASSERT_FALSE(msg.empty()) << "truncated to " << n << " bytes parsed";
        EXPECT_TRUE(std::regex_match(msg, form)) << msg;
    }
}

TEST(Header, VersionsTwoAndThreeBothParse) {
    for (uint32_t version : {2u, 3u}) {
        GgufBuilder b;
        b.header(1, 1, version).kv_str("general.architecture", "llama").tensor("w", {8}, 0, 0).pad().zeros(32);
        const File f = File::parse(b.bytes, "v.gguf");
        EXPECT_EQ(f.version(), version);
        EXPECT_EQ(f.metadata().get_string("general.architecture"), "llama");
        ASSERT_EQ(f.tensors().size(), 1u);
        EXPECT_EQ(f.tensor_data(f.tensors()[0]).size(), 32u);
    }
}

TEST(Hostile, BadMagicAndVersion) {
    auto b = valid_file();
    b[0] = 'X';
    expect_error(b, "bad magic", 0);
    expect_error(GgufBuilder().header(0, 0, 1).bytes, "version 1", 4);
    expect_error(GgufBuilder().header(0, 0, 7).bytes, "unsupported GGUF version 7", 4);
    expect_error(GgufBuilder().header(0, 0, 0x03000000).bytes, "big-endian", 4);
}

TEST(Hostile, AbsurdCounts) {
    expect_error(GgufBuilder().header(1ull << 60, 0).bytes, "tensor count", 8);
    expect_error(GgufBuilder().header(0, ~0ull).bytes, "metadata count", 16);
    expect_error(GgufBuilder().header(0, 1).str("k").u32(9).u32(8).u64(1ull << 62).bytes, "array of", 41);
}

TEST(Hostile, AbsurdStringLength) {
    expect_error(GgufBuilder().header(0, 1).u64(~0ull).zeros(16).bytes, "string length", 24);
    expect_error(GgufBuilder().header(0, 1).str("k").u32(8).u64(1000).zeros(10).bytes, "string length", 37);
}

TEST(Hostile, InvalidValueTypes) {
    expect_error(GgufBuilder().header(0, 1).str("k").u32(13).u32(0).bytes, "invalid value type 13", 33);
    expect_error(GgufBuilder().header(0, 1).str("k").u32(9).u32(99).u64(0).bytes, "invalid element type", 37);
    expect_error(GgufBuilder().header(0, 1).str("k").u32(7).u8(2).bytes, "invalid bool", 37);
}

TEST(Hostile, DeeplyNestedArrays) {
    GgufBuilder b;
    b.header(0, 1).str("k").u32(9);
    for (int i = 0; i < 100; ++i) b.u32(9).u64(1);
    b.u32(0).u64(0);
    EXPECT_NE(parse_error_of(b.bytes).find("nested"), std::string::npos);
}

TEST(Hostile, DuplicateKeysAndNames) {
    expect_error(GgufBuilder().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).bytes, "duplicate metadata key 'k'", 41);
    GgufBuilder b;
    b.header(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad().zeros(64);
    expect_error(b.bytes, "duplicate tensor name 't'", 57);
}

TEST(Hostile, BadDimensions) {
    auto with_tensor = [](std::vector<int64_t> dims, uint32_t type = 0) {
        GgufBuilder b;
        b.header(1, 0).tensor("t", std::move(dims), type, 0).pad().zeros(64);
        return b.bytes;
    };
    expect_error(with_tensor({1, 1, 1, 1, 1}), "5 dimensions", 33);
    expect_error(with_tensor({-4}), "negative dimension", 37);
    expect_error(with_tensor({1ll << 40, 1ll << 40}), "element count overflows", 45);
    expect_error(with_tensor({8}, 4), "unknown type id 4", 45);
    expect_error(with_tensor({8}, 2), "not a multiple of the q4_0 block size", 33);
}

TEST(Hostile, BadTensorData) {
    auto with_offsets = [](uint64_t a, uint64_t b, size_t data = 64) {
        GgufBuilder g;
        g.header(2, 0).tensor("a", {8}, 0, a).tensor("b", {8}, 0, b).pad().zeros(data);
        return g.bytes;
    };
    expect_error(with_offsets(0, 16), "not aligned", 57);
    expect_error(with_offsets(0, 64), "runs past the end", 57);
    expect_error(with_offsets(0, 0), "overlaps", 57);
    expect_error(with_offsets(~0ull & ~31ull, 32), "runs past the end", 24);
}

TEST(Hostile, BadAlignment) {
    GgufBuilder b;
    b.header(0, 1).kv_u32("general.alignment", 48);
    EXPECT_NE(parse_error_of(b.bytes).find("not a power of two"), std::string::npos);
    GgufBuilder c;
    c.header(0, 1).kv_str("general.alignment", "32");
    EXPECT_NE(parse_error_of(c.bytes).find("must be u32"), std::string::npos);
}

TEST(Hostile, MissingFileIsAnError) {
    EXPECT_THROW(File::open("/nonexistent/model.gguf"), Error);
}

TEST(Hostile, ControlBytesInNamesAreEscapedInMessages) {
    const std::string name("a\0b\n", 4);
    GgufBuilder b;
    b.header(2, 0).tensor(name, {8}, 0, 0).tensor(name, {8}, 0, 32).pad().zeros(64);
    std::string msg = parse_error_of(b.bytes);
    EXPECT_NE(msg.find("duplicate tensor name 'a\\x00b\\x0a'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(" at offset 60"), std::string::npos) << msg;  // header 24 + first info 36
}
