// Against ggml's reference vectors (fixtures/quant/quant-vectors.gguf): our dequantization of ggml's
// blocks is bit-exact, and our quantizers are at least as accurate as ggml's on the same input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fixtures.h"
#include "gguf/file.h"
#include "quant/quant.h"

using gguf::GgmlType;

namespace {

constexpr const char* kFixture = "quant/quant-vectors.gguf";
constexpr int64_t kRowLen = 256;
constexpr int64_t kRows = 200;
// Row groups of the fixture's input (see its README).
constexpr int64_t kRealEnd = 128, kSyntheticEnd = 192;

const gguf::File& vectors() {
    static const std::unique_ptr<gguf::File> file =
        std::make_unique<gguf::File>(gguf::File::open(testing_support::fixture(kFixture).string()));
    return *file;
}

std::vector<float> f32_tensor(const std::string& name) {
    const gguf::File& f = vectors();
    const gguf::TensorInfo& t = f.tensor(name);
    EXPECT_EQ(t.type, GgmlType::F32) << name;
    const auto bytes = f.tensor_data(t);
    std::vector<float> out(bytes.size() / 4);
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
}

std::vector<float> dequantize(GgmlType type, const uint8_t* blocks) {
    const size_t row_bytes = gguf::row_size(type, kRowLen);
    std::vector<float> out(kRows * kRowLen);
    for (int64_t r = 0; r < kRows; ++r) {
        quant::dequantize_row(type, blocks + r * row_bytes, out.data() + r * kRowLen, kRowLen);
    }
    return out;
}

// sqrt(sum w e^2 / sum w x^2) over rows [begin, end); w is the imatrix column weight or 1.
double nrmse(const std::vector<float>& x, const std::vector<float>& y, int64_t begin, int64_t end,
             const float* imatrix) {
    double num = 0, den = 0;
    for (int64_t r = begin; r < end; ++r) {
        for (int64_t j = 0; j < kRowLen; ++j) {
            const double w = imatrix ? imatrix[j] : 1.0;
            const double a = x[r * kRowLen + j], e = a - y[r * kRowLen + j];
            num += w * e * e;
            den += w * a * a;
        }
    }
    return std::sqrt(num / den);
}

struct Case {
    const char* name;
    GgmlType type;
};

class QuantVectors : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override { REQUIRE_FIXTURE(kFixture); }
};

TEST_P(QuantVectors, DequantizationIsBitExact) {
    const Case& c = GetParam();
    for (const std::string suffix : {"", "i"}) {
        const gguf::File& f = vectors();
        const gguf::TensorInfo& q = f.tensor(std::string(c.name) + ".q" + suffix);
        ASSERT_EQ(q.type, c.type);
        const std::vector<float> ours = dequantize(c.type, f.tensor_data(q).data());
        const std::vector<float> ggml = f32_tensor(std::string(c.name) + ".deq" + suffix);
        ASSERT_EQ(ours.size(), ggml.size());
        size_t differing = 0, first = 0;
        for (size_t i = 0; i < ours.size(); ++i) {
            if (std::memcmp(&ours[i], &ggml[i], 4) != 0 && differing++ == 0) first = i;
        }
        EXPECT_EQ(differing, 0u) << c.name << ".q" << suffix << ": first difference at element " << first
                                 << ": " << ours[first] << " vs ggml " << ggml[first];
    }
}

TEST_P(QuantVectors, QuantizationIsAsAccurateAsGgml) {
    const Case& c = GetParam();
    const gguf::File& f = vectors();
    const std::vector<float> input = f32_tensor("input");
    const std::vector<float> imatrix = f32_tensor("imatrix");
    const size_t row_bytes = gguf::row_size(c.type, kRowLen);
    for (const bool weighted : {false, true}) {
        const float* im = weighted ? imatrix.data() : nullptr;
        std::vector<uint8_t> blocks(row_bytes * kRows);
        quant::quantize_rows(c.type, input.data(), blocks.data(), kRows, kRowLen, im);
        const std::vector<float> ours = dequantize(c.type, blocks.data());
        const std::vector<float> ggml = f32_tensor(std::string(c.name) + (weighted ? ".deqi" : ".deq"));
        const std::string key = std::string("qvec.") + c.name + ".nrmse_";
        const std::string sfx = weighted ? "_imatrix" : "";
        const double ref_real = f.metadata().get_f32(key + "real" + sfx);
        const double ref_syn = f.metadata().get_f32(key + "synthetic" + sfx);
        const double real = nrmse(input, ours, 0, kRealEnd, im);
        const double syn = nrmse(input, ours, kRealEnd, kSyntheticEnd, im);
        // The file's figures are recomputed from ggml's own output, to check the error definition.
        EXPECT_NEAR(nrmse(input, ggml, 0, kRealEnd, im), ref_real, ref_real * 1e-4);
        std::printf("  %-5s %-8s real %.6f (ggml %.6f)  synthetic %.6f (ggml %.6f)\n", c.name,
                    weighted ? "imatrix" : "plain", real, ref_real, syn, ref_syn);
        EXPECT_LE(real, ref_real * 1.005) << c.name << sfx;
        EXPECT_LE(syn, ref_syn * 1.005) << c.name << sfx;
        for (int64_t i = kSyntheticEnd * kRowLen; i < kRows * kRowLen; ++i) {
            ASSERT_TRUE(std::isfinite(ours[i])) << c.name << sfx << " edge row " << i / kRowLen;
        }
        // Same algorithm as ggml, same rounding: the blocks should be ggml's, byte for byte.
        const auto ref_blocks = f.tensor_data(f.tensor(std::string(c.name) + (weighted ? ".qi" : ".q")));
        int64_t same_rows = 0;
        for (int64_t r = 0; r < kRows; ++r) {
            same_rows += std::memcmp(blocks.data() + r * row_bytes, ref_blocks.data() + r * row_bytes, row_bytes) == 0;
        }
        EXPECT_EQ(same_rows, kRows) << c.name << sfx << ": rows whose blocks differ from ggml's";
    }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantVectors,
                         ::testing::Values(Case{"q4_0", GgmlType::Q4_0}, Case{"q4_1", GgmlType::Q4_1},
                                           Case{"q5_0", GgmlType::Q5_0}, Case{"q5_1", GgmlType::Q5_1},
                                           Case{"q8_0", GgmlType::Q8_0}, Case{"q2_K", GgmlType::Q2_K},
                                           Case{"q3_K", GgmlType::Q3_K}, Case{"q4_K", GgmlType::Q4_K},
                                           Case{"q5_K", GgmlType::Q5_K}, Case{"q6_K", GgmlType::Q6_K}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
