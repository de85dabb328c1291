// Importance-matrix reading: both of llama.cpp's formats, the mean-square values llama-quantize
// derives from them (per expert for stacked tensors), and one-line errors for broken files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gguf/writer.h"
#include "quant/imatrix.h"
#include "quant/quant.h"

namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / ("imatrix-test-" + std::to_string(::getpid()) + "-" + name);
}

struct Part {
    std::string name;
    std::vector<int64_t> dims;
    std::vector<float> values;
    gguf::GgmlType type = gguf::GgmlType::F32;
};

// A GGUF imatrix as llama-imatrix writes it: metadata, then the given tensors.
fs::path write_gguf_imatrix(const std::string& file, const std::vector<Part>& parts, bool with_metadata = true) {
    const fs::path path = temp_path(file);
    gguf::Writer w(path.string());
    w.metadata().set("general.type", gguf::Value::string("imatrix"));
    if (with_metadata) {
        w.metadata().set("imatrix.datasets", gguf::Value::string_array({"calib.txt"}));
        w.metadata().set("imatrix.chunk_count", gguf::Value::u32(10));
        w.metadata().set("imatrix.chunk_size", gguf::Value::u32(512));
    }
    for (const auto& p : parts) w.add_tensor(p.name, p.type, p.dims);
    for (const auto& p : parts) {
        std::vector<uint8_t> bytes(w.tensors()[&p - parts.data()].n_bytes());
        std::memcpy(bytes.data(), p.values.data(), std::min(bytes.size(), p.values.size() * sizeof(float)));
        w.write_data(bytes);
    }
    w.finish();
    return path;
}

class LegacyBytes {
public:
    LegacyBytes& i32(int32_t v) { return raw(&v, 4); }
    LegacyBytes& f32s(const std::vector<float>& v) { return raw(v.data(), v.size() * 4); }
    LegacyBytes& str(const std::string& s) { return raw(s.data(), s.size()); }
    LegacyBytes& raw(const void* p, size_t n) {
        bytes.insert(bytes.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
        return *this;
    }
    std::vector<uint8_t> bytes;
};

std::string load_error(const fs::path& path) {
    try {
        quant::Imatrix::load(path.string());
    } catch (const quant::Error& e) {
        return e.what();
    }
    return "(no error)";
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
    try {
        quant::Imatrix::parse(bytes, "x.dat");
    } catch (const quant::Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(ImatrixGguf, ValuesAreMeanSquaresPerExpert) {
    const fs::path path = write_gguf_imatrix(
        "ok.gguf", {
                       {"blk.0.attn_q.weight.in_sum2", {4}, {2, 4, 6, 8}},
                       {"blk.0.attn_q.weight.counts", {1}, {2}},
                       // Three experts of two columns; the second expert was never routed to.
                       {"blk.0.ffn_up_exps.weight.in_sum2", {2, 3}, {2, 4, 9, 9, 8, 12}},
                       {"blk.0.ffn_up_exps.weight.counts", {1, 3}, {2, 0, 4}},
                       {"blk.0.ffn_up_exps.weight.in_sum", {2, 3}, {0, 0, 0, 0, 0, 0}},
                   });
    const quant::Imatrix im = quant::Imatrix::load(path.string());
    fs::remove(path);
    EXPECT_FALSE(im.is_legacy());
    EXPECT_EQ(im.path(), path.string());
    EXPECT_EQ(im.datasets(), std::vector<std::string>{"calib.txt"});
    EXPECT_EQ(im.chunk_count(), 10u);
    EXPECT_EQ(im.chunk_size(), 512u);
    ASSERT_EQ(im.entries().size(), 2u);
    ASSERT_NE(im.find("blk.0.attn_q.weight"), nullptr);
    EXPECT_EQ(im.find("blk.0.attn_q.weight")->values, (std::vector<float>{1, 2, 3, 4}));
    // An expert without activations gets neutral weights of 1.
    EXPECT_EQ(im.find("blk.0.ffn_up_exps.weight")->values, (std::vector<float>{1, 2, 1, 1, 2, 3}));
    EXPECT_EQ(im.find("blk.0.attn_k.weight"), nullptr);
}

TEST(ImatrixGguf, DefectsAreErrorsNamingFileAndEntry) {
    fs::path p = write_gguf_imatrix("nocounts.gguf", {{"a.weight.in_sum2", {4}, {1, 1, 1, 1}}});
    EXPECT_NE(load_error(p).find("imatrix entry 'a.weight' lacks its .counts tensor"), std::string::npos);
    EXPECT_EQ(load_error(p).rfind(p.string(), 0), 0u);
    fs::remove(p);

    p = write_gguf_imatrix("f16.gguf", {{"a.weight.in_sum2", {4}, {}, gguf::GgmlType::F16},
                                        {"a.weight.counts", {1}, {1}}});
    EXPECT_NE(load_error(p).find("'a.weight.in_sum2' is f16, not f32"), std::string::npos);
    fs::remove(p);

    p = write_gguf_imatrix("nometa.gguf", {{"a.weight.in_sum2", {4}, {1, 1, 1, 1}}, {"a.weight.counts", {1}, {1}}},
                           false);
    EXPECT_NE(load_error(p).find("not an importance matrix"), std::string::npos);
    fs::remove(p);

    p = write_gguf_imatrix("uneven.gguf", {{"a.weight.in_sum2", {5}, {1, 1, 1, 1, 1}}, {"a.weight.counts", {2}, {1, 1}}});
    EXPECT_NE(load_error(p).find("5 sums for 2 counts"), std::string::npos);
    fs::remove(p);

    const float nan = std::numeric_limits<float>::quiet_NaN();
    p = write_gguf_imatrix("nan.gguf", {{"a.weight.in_sum2", {2}, {1, nan}}, {"a.weight.counts", {1}, {1}}});
    EXPECT_NE(load_error(p).find("non-finite"), std::string::npos);
    fs::remove(p);

    p = write_gguf_imatrix("empty.gguf", {});
    EXPECT_NE(load_error(p).find("holds no entries"), std::string::npos);
    fs::remove(p);

    EXPECT_NE(load_error("/nonexistent/imatrix.gguf").find("/nonexistent/imatrix.gguf"), std::string::npos);
}

TEST(ImatrixLegacy, ValuesAreSumsOverCalls) {
    LegacyBytes b;
    b.i32(2);
    b.i32(8).str("a.weight").i32(4).i32(3).f32s({4, 8, 12});
    b.i32(8).str("b.weight").i32(0).i32(2).f32s({1, 2});  // no calls: values as stored
    const std::vector<uint8_t> bare = b.bytes;
    b.i32(7).i32(9).str("calib.txt");

    quant::Imatrix im = quant::Imatrix::parse(b.bytes, "x.dat");
    EXPECT_TRUE(im.is_legacy());
    EXPECT_EQ(im.find("a.weight")->values, (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(im.find("b.weight")->values, (std::vector<float>{1, 2}));
    EXPECT_EQ(im.chunk_count(), 7u);
    EXPECT_EQ(im.chunk_size(), 0u);
    EXPECT_EQ(im.datasets(), std::vector<std::string>{"calib.txt"});

    // The trailer is optional.
    im = quant::Imatrix::parse(bare, "x.dat");
    EXPECT_EQ(im.entries().size(), 2u);
    EXPECT_EQ(im.chunk_count(), 0u);
    EXPECT_TRUE(im.datasets().empty());

    // And a file on disk reads the same.
    const fs::path path = temp_path("legacy.dat");
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.bytes.data()), b.bytes.size());
    EXPECT_EQ(quant::Imatrix::load(path.string()).find("a.weight")->values, (std::vector<float>{1, 2, 3}));
    fs::remove(path);
}

TEST(ImatrixLegacy, DefectsAreErrorsWithOffsets) {
    LegacyBytes ok;
    ok.i32(1).i32(8).str("a.weight").i32(1).i32(3).f32s({1, 2, 3});
    std::vector<uint8_t> cut(ok.bytes.begin(), ok.bytes.end() - 2);
    EXPECT_NE(parse_error(cut).find("bad value count at offset 20"), std::string::npos) << parse_error(cut);
    cut.assign(ok.bytes.begin(), ok.bytes.begin() + 18);
    EXPECT_NE(parse_error(cut).find("truncated reading a call count at offset 16"), std::string::npos)
        << parse_error(cut);
    EXPECT_NE(parse_error({}).find("truncated reading the entry count at offset 0"), std::string::npos);

    LegacyBytes huge;
    huge.i32(1 << 30).i32(8);
    EXPECT_NE(parse_error(huge.bytes).find("bad entry count"), std::string::npos);
    LegacyBytes neg_name;
    neg_name.i32(1).i32(-5).i32(0).i32(0).i32(0);
    EXPECT_NE(parse_error(neg_name.bytes).find("bad name length at offset 4"), std::string::npos);
    LegacyBytes twice;
    twice.i32(2).i32(1).str("a").i32(1).i32(1).f32s({1}).i32(1).str("a").i32(1).i32(1).f32s({1});
    EXPECT_NE(parse_error(twice.bytes).find("entry 'a' twice"), std::string::npos);
}

}  // namespace
