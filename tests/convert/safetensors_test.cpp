// Safetensors reading: well-formed files expose their tensors in header order; every kind of
// damage is a convert::Error naming the file and what is wrong.
#include "convert/safetensors.h"

#include <gtest/gtest.h>

#include "convert/error.h"
#include "hf_checkpoint.h"

using namespace hf_test;

namespace {

std::string open_error(const fs::path& p) {
    try {
        convert::SafetensorsFile::open(p.string());
    } catch (const convert::Error& e) {
        return e.what();
    }
    return "";
}

std::string with_length(uint64_t n, const std::string& rest) {
    return std::string(reinterpret_cast<const char*>(&n), 8) + rest;
}

}  // namespace

TEST(Safetensors, ReadsTensorsInHeaderOrder) {
    TempDir dir("st-read");
    const std::vector<float> v = {1.5f, -2.0f, 0.25f, 8.0f, 3.0f, -1.0f};
    write_safetensors(dir / "m.safetensors",
                      {{"z.weight", "BF16", {2, 3}, v}, {"a.bias", "F32", {3}, {1, 2, 3}}, {"s", "F16", {}, {0.5f}}});
    auto f = convert::SafetensorsFile::open((dir / "m.safetensors").string());
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.tensors()[0].name, "z.weight");
    EXPECT_EQ(f.tensors()[0].dtype, convert::Dtype::BF16);
    EXPECT_EQ(f.tensors()[0].shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(f.tensors()[0].data.size(), 12u);
    uint16_t h;
    std::memcpy(&h, f.tensors()[0].data.data() + 2, 2);
    EXPECT_EQ(quant::bf16_to_f32(h), -2.0f);
    EXPECT_EQ(f.tensors()[1].name, "a.bias");
    float x;
    std::memcpy(&x, f.tensors()[1].data.data() + 8, 4);
    EXPECT_EQ(x, 3.0f);
    EXPECT_EQ(f.tensors()[2].n_elements(), 1u);  // a scalar has one element
    EXPECT_EQ(f.find("a.bias"), &f.tensors()[1]);
    EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(Safetensors, RejectsTruncatedHeader) {
    TempDir dir("st-trunc");
    write_file(dir / "short.safetensors", "abc");
    EXPECT_NE(open_error(dir / "short.safetensors").find("too short for a header"), std::string::npos);
    write_file(dir / "cut.safetensors", with_length(500, "{\"a\":"));
    EXPECT_EQ(open_error(dir / "cut.safetensors"),
              (dir / "cut.safetensors").string() + ": truncated: header of 500 bytes but the file has 13 bytes");
    write_file(dir / "huge.safetensors", with_length(UINT64_MAX, "{}"));
    EXPECT_NE(open_error(dir / "huge.safetensors").find("header length 18446744073709551615 is implausible"),
              std::string::npos);
}

TEST(Safetensors, RejectsGarbledHeader) {
    TempDir dir("st-garbled");
    write_file(dir / "g.safetensors", with_length(9, "{\"a\": [1,"));
    const std::string e = open_error(dir / "g.safetensors");
    EXPECT_NE(e.find("invalid safetensors header JSON"), std::string::npos) << e;
    EXPECT_NE(e.find("g.safetensors (header):1:10"), std::string::npos) << e;
    write_file(dir / "arr.safetensors", with_length(2, "[]"));
    write_file(dir / "meta.safetensors", with_length(20, "{\"__metadata__\": 7 }"));
    EXPECT_NE(open_error(dir / "meta.safetensors").find("__metadata__ is not an object"), std::string::npos);
    EXPECT_NE(open_error(dir / "arr.safetensors").find("header is not a JSON object"), std::string::npos);
    write_file(dir / "entry.safetensors", with_length(9, "{\"t\": 5 }"));
    EXPECT_NE(open_error(dir / "entry.safetensors").find("tensor 't': entry is not an object"), std::string::npos);
}

TEST(Safetensors, RejectsUnsupportedDtype) {
    TempDir dir("st-dtype");
    std::vector<TensorSpec> t = {{"ids", "F32", {2}, {1, 2}}};
    std::string header = safetensors_header(t);
    header.replace(header.find("F32"), 3, "I64");
    write_safetensors(dir / "d.safetensors", t, header);
    EXPECT_EQ(open_error(dir / "d.safetensors"),
              (dir / "d.safetensors").string() + ": tensor 'ids': unsupported dtype I64 (supported: F32, F16, BF16, U8)");
}

TEST(Safetensors, RejectsShapeThatDisagreesWithByteRange) {
    TempDir dir("st-shape");
    std::vector<TensorSpec> t = {{"w", "F32", {2, 2}, {}}};
    std::string header = safetensors_header(t);
    header.replace(header.find("[2,2]"), 5, "[2,3]");
    write_safetensors(dir / "s.safetensors", t, header);
    EXPECT_NE(open_error(dir / "s.safetensors").find("tensor 'w': shape and dtype need 24 bytes but data_offsets span 16"),
              std::string::npos);
    header = safetensors_header(t);
    header.replace(header.find("[2,2]"), 5, "[2,-2]");
    write_safetensors(dir / "neg.safetensors", t, header);
    EXPECT_NE(open_error(dir / "neg.safetensors").find("not a non-negative integer"), std::string::npos);
    header = safetensors_header(t);
    header.replace(header.find("[2,2]"), 5, "[4294967296,4294967296,4294967296]");
    write_safetensors(dir / "big.safetensors", t, header);
    EXPECT_NE(open_error(dir / "big.safetensors").find("shape is too large"), std::string::npos);
}

TEST(Safetensors, RejectsRangesOutOfBoundsOrOverlapping) {
    TempDir dir("st-range");
    std::vector<TensorSpec> t = {{"a", "F32", {2}, {}}, {"b", "F32", {2}, {}}};
    std::string header = safetensors_header(t);
    header.replace(header.find("[8,16]"), 6, "[8,99]");
    write_safetensors(dir / "oob.safetensors", t, header);
    EXPECT_NE(open_error(dir / "oob.safetensors").find("tensor 'b': byte range [8, 99) runs past the data section of 16 bytes"),
              std::string::npos);
    header = safetensors_header(t);
    header.replace(header.find("[8,16]"), 6, "[4,12]");
    write_safetensors(dir / "overlap.safetensors", t, header);
    EXPECT_NE(open_error(dir / "overlap.safetensors").find("tensors 'a' and 'b' overlap"), std::string::npos);
    header = safetensors_header(t);
    header.replace(header.find("[8,16]"), 6, "[16,8]");
    write_safetensors(dir / "rev.safetensors", t, header);
    EXPECT_NE(open_error(dir / "rev.safetensors").find("begin 16 is after end 8"), std::string::npos);
    // Data section cut short: the last tensor's range runs off the end of the file.
    write_safetensors(dir / "full.safetensors", t);
    fs::resize_file(dir / "full.safetensors", fs::file_size(dir / "full.safetensors") - 4);
    EXPECT_NE(open_error(dir / "full.safetensors").find("(truncated file?)"), std::string::npos);
}

TEST(Safetensors, MissingFileNamesIt) {
    EXPECT_EQ(open_error("/nonexistent/x.safetensors").rfind("/nonexistent/x.safetensors: cannot open", 0), 0u);
}
