// The IQ / MXFP4 / TQ formats against ggml's reference vectors (fixtures/quant/quant-vectors.gguf):
// dequantization bit for bit, quantization error no worse than ggml's (0.5% slack), edge rows finite,
// and output independent of the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "fixtures.h"
#include "gguf/file.h"
#include "quant/quant.h"

namespace {

constexpr const char* kVectors = "quant/quant-vectors.gguf";
constexpr int64_t kRowLen = 256;
constexpr int64_t kRows = 200;

struct Vectors {
    gguf::File file;
    std::vector<float> input;    // kRows x kRowLen
    std::vector<float> imatrix;  // kRowLen

    static Vectors load() {
        Vectors v{gguf::File::open(testing_support::fixture(kVectors).string()), {}, {}};
        v.input = v.floats("input");
        v.imatrix = v.floats("imatrix");
        return v;
    }
    std::vector<float> floats(const std::string& name) const {
        const auto bytes = file.tensor_data(file.tensor(name));
        std::vector<float> out(bytes.size() / 4);
        std::memcpy(out.data(), bytes.data(), bytes.size());
        return out;
    }
};

// sqrt(sum w e^2 / sum w x^2) over rows [r0, r1), w the imatrix column weight or 1.
double nrmse(const std::vector<float>& x, const std::vector<float>& y, const float* w, int64_t r0, int64_t r1) {
    double num = 0, den = 0;
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = 0; c < kRowLen; ++c) {
            const double wt = w ? w[c] : 1.0;
            const double xv = x[r * kRowLen + c], e = xv - y[r * kRowLen + c];
            num += wt * e * e;
            den += wt * xv * xv;
        }
    }
    return std::sqrt(num / den);
}

class IqFixture : public testing::TestWithParam<const char*> {
protected:
    gguf::GgmlType type() const { return *gguf::type_from_name(GetParam()); }
    std::string name() const { return GetParam(); }
};

TEST_P(IqFixture, DequantizesBitExactly) {
    REQUIRE_FIXTURE(kVectors);
    const Vectors v = Vectors::load();
    int checked = 0;
    for (const std::string suffix : {"", "i"}) {
        const gguf::TensorInfo* q = v.file.find_tensor(name() + ".q" + suffix);
        if (!q) continue;  // ggml cannot quantize the IQ1/IQ2 family without an imatrix
        ASSERT_EQ(q->type, type());
        const auto blocks = v.file.tensor_data(*q);
        const std::vector<float> want = v.floats(name() + ".deq" + suffix);
        std::vector<float> got(kRows * kRowLen);
        quant::dequantize_row(type(), blocks.data(), got.data(), kRows * kRowLen);
        for (int64_t i = 0; i < kRows * kRowLen; ++i) {
            uint32_t a, b;
            std::memcpy(&a, &got[i], 4);
            std::memcpy(&b, &want[i], 4);
            ASSERT_EQ(a, b) << name() << ".q" << suffix << " element " << i << ": " << got[i] << " vs " << want[i];
        }
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

TEST_P(IqFixture, QuantizesAtLeastAsWellAsGgml) {
    REQUIRE_FIXTURE(kVectors);
    const Vectors v = Vectors::load();
    const auto& md = v.file.metadata();
    const size_t row_bytes = gguf::row_size(type(), kRowLen);
    for (const bool with_imatrix : {false, true}) {
        if (!with_imatrix && quant::requires_imatrix(type())) continue;
        const float* w = with_imatrix ? v.imatrix.data() : nullptr;
        std::vector<uint8_t> q(row_bytes * kRows);
        quant::quantize_rows(type(), v.input.data(), q.data(), kRows, kRowLen, w);
        std::vector<float> deq(kRows * kRowLen);
        quant::dequantize_row(type(), q.data(), deq.data(), kRows * kRowLen);

        const std::string sfx = with_imatrix ? "_imatrix" : "";
        const double ours_real = nrmse(v.input, deq, w, 0, 128);
        const double ours_syn = nrmse(v.input, deq, w, 128, 192);
        const double ggml_real = md.find("qvec." + name() + ".nrmse_real" + sfx)->as_f64();
        const double ggml_syn = md.find("qvec." + name() + ".nrmse_synthetic" + sfx)->as_f64();
        std::cout << "[ nrmse ] " << name() << (with_imatrix ? " imatrix" : " plain  ") << "  real "
                  << ours_real << " (ggml " << ggml_real << ", " << 100 * (ours_real / ggml_real - 1)
                  << "%)  synthetic " << ours_syn << " (ggml " << ggml_syn << ", "
                  << 100 * (ours_syn / ggml_syn - 1) << "%)\n";
        EXPECT_LE(ours_real, ggml_real * 1.005) << name() << sfx;
        EXPECT_LE(ours_syn, ggml_syn * 1.005) << name() << sfx;
        for (int64_t i = 192 * kRowLen; i < kRows * kRowLen; ++i) {
            ASSERT_TRUE(std::isfinite(deq[i])) << name() << sfx << " edge element " << i;
        }
    }
}

TEST_P(IqFixture, OutputDoesNotDependOnThreadCount) {
    REQUIRE_FIXTURE(kVectors);
    const Vectors v = Vectors::load();
    const size_t bytes = gguf::row_size(type(), kRowLen) * kRows;
    std::vector<uint8_t> one(bytes), two(bytes);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    quant::quantize_rows(type(), v.input.data(), one.data(), kRows, kRowLen, v.imatrix.data());
    omp_set_num_threads(2);
    quant::quantize_rows(type(), v.input.data(), two.data(), kRows, kRowLen, v.imatrix.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(one, two);
}

INSTANTIATE_TEST_SUITE_P(Types, IqFixture, testing::Values("iq4_nl", "iq4_xs", "mxfp4", "tq1_0", "tq2_0", "iq3_s", "iq3_xxs", "iq2_s",
                                                         "iq2_xs", "iq2_xxs", "iq1_s", "iq1_m"),
                         [](const testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

}  // namespace
