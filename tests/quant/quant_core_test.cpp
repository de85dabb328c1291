// Unit tests of the numeric core: fp16/bf16 rounding, the dot-product kernels (every SIMD level
// against the scalar reference and against dequantize-then-dot), thread-count independence of
// quantize_rows, and quantization of awkward rows. White-box: kernels are reached per level through
// the registry's FormatOps.
#include <gtest/gtest.h>
#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "block_common.h"
#include "format_ops.h"
#include "quant/float16.h"
#include "quant/quant.h"

using gguf::GgmlType;

namespace {

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float float_of(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

bool is_nan_half(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

// The CPU's own conversions (F16C), the behaviour ggml gets on x86.
__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
__attribute__((target("f16c"))) float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
bool have_f16c() { return __builtin_cpu_supports("f16c"); }

// --- fp16 / bf16 --------------------------------------------------------------------------------

TEST(Float16, EveryHalfSurvivesTheRoundTrip) {
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const float f = quant::f16_to_f32(static_cast<uint16_t>(h));
        const uint16_t back = quant::f32_to_f16(f);
        if (is_nan_half(static_cast<uint16_t>(h))) {
            EXPECT_TRUE(std::isnan(f)) << std::hex << h;
            EXPECT_TRUE(is_nan_half(back)) << std::hex << h;
        } else {
            ASSERT_EQ(back, h) << std::hex << "half 0x" << h << " -> " << f;
        }
    }
}

TEST(Float16, TiesRoundToEven) {
    // Halfway between 1 and the next half (1 + 2^-10) rounds down to the even 1; halfway above that
    // rounds up to the even 1 + 2^-9.
    EXPECT_EQ(quant::f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    EXPECT_EQ(quant::f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    EXPECT_EQ(quant::f32_to_f16(1.0f + 0x1p-11f + 0x1p-23f), 0x3c01);  // just above the tie
    // Subnormal halves: 2^-25 is halfway between 0 and the smallest subnormal, 3 * 2^-25 between 1 and 2.
    EXPECT_EQ(quant::f32_to_f16(0x1p-25f), 0x0000);
    EXPECT_EQ(quant::f32_to_f16(3 * 0x1p-25f), 0x0002);
    EXPECT_EQ(quant::f32_to_f16(-0x1p-25f - 0x1p-40f), 0x8001);
    // 65520 is halfway between the largest half 65504 and 65536: rounds to even, which overflows.
    EXPECT_EQ(quant::f32_to_f16(65519.99f), 0x7bff);
    EXPECT_EQ(quant::f32_to_f16(65520.f), 0x7c00);
    EXPECT_EQ(quant::f32_to_f16(-INFINITY), 0xfc00);
    EXPECT_TRUE(is_nan_half(quant::f32_to_f16(NAN)));
}

TEST(Float16, MatchesTheHardwareConversion) {
    if (!have_f16c()) GTEST_SKIP() << "no F16C on this CPU";
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const uint16_t half = static_cast<uint16_t>(h);
        const float ours = quant::f16_to_f32(half), hw = hw_f16_to_f32(half);
        ASSERT_EQ(bits_of(ours), bits_of(hw)) << std::hex << "half 0x" << h;
        if (is_nan_half(half) || (h & 0x7fff) >= 0x7bff) continue;
        // The midpoint to the next half and its two neighbours: where rounding decides.
        const float next = hw_f16_to_f32(static_cast<uint16_t>(h + 1));
        const uint32_t mid = bits_of(ours) + (bits_of(next) - bits_of(ours)) / 2;
        for (uint32_t u : {mid - 1, mid, mid + 1}) {
            ASSERT_EQ(quant::f32_to_f16(float_of(u)), hw_f32_to_f16(float_of(u))) << std::hex << "float 0x" << u;
        }
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 1 << 20; ++i) {
        const float f = float_of(static_cast<uint32_t>(rng()));
        const uint16_t ours = quant::f32_to_f16(f), hw = hw_f32_to_f16(f);
        if (std::isnan(f)) {
            EXPECT_TRUE(is_nan_half(ours));
        } else {
            ASSERT_EQ(ours, hw) << std::hex << "float 0x" << bits_of(f);
        }
    }
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNaN) {
    EXPECT_EQ(quant::f32_to_bf16(float_of(0x3f808000)), 0x3f80);  // tie, even below
    EXPECT_EQ(quant::f32_to_bf16(float_of(0x3f818000)), 0x3f82);  // tie, even above
    EXPECT_EQ(quant::f32_to_bf16(float_of(0x3f808001)), 0x3f81);
    EXPECT_TRUE(std::isnan(quant::bf16_to_f32(quant::f32_to_bf16(float_of(0x7f800001)))));
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const float f = quant::bf16_to_f32(static_cast<uint16_t>(h));
        if (!std::isnan(f)) {
            ASSERT_EQ(quant::f32_to_bf16(f), h);
        }
    }
}

TEST(Rounding, HalfAwayMatchesRoundfAndNearestIntTiesToEven) {
    std::vector<float> values;
    for (int k = -600; k <= 600; ++k) {
        const float tie = static_cast<float>(k) / 2;
        values.insert(values.end(), {tie, std::nextafter(tie, -1e9f), std::nextafter(tie, 1e9f)});
    }
    std::mt19937 rng(4);
    std::uniform_real_distribution<float> any(-300.f, 300.f);
    for (int i = 0; i < 100000; ++i) values.push_back(any(rng));
    for (float v : values) {
        ASSERT_EQ(quant::round_half_away(v), static_cast<int>(std::round(v))) << v;
        ASSERT_EQ(quant::nearest_int(v), static_cast<int>(std::nearbyint(v))) << v;
    }
}

// --- dot products -------------------------------------------------------------------------------

const GgmlType kTypes[] = {GgmlType::F32,     GgmlType::F16,    GgmlType::BF16,   GgmlType::Q4_0,
                           GgmlType::Q4_1,    GgmlType::Q5_0,   GgmlType::Q5_1,   GgmlType::Q8_0,
                           GgmlType::Q2_K,    GgmlType::Q3_K,   GgmlType::Q4_K,   GgmlType::Q5_K,
                           GgmlType::Q6_K,    GgmlType::IQ1_S,  GgmlType::IQ1_M,  GgmlType::IQ2_XXS,
                           GgmlType::IQ2_XS,  GgmlType::IQ2_S,  GgmlType::IQ3_XXS, GgmlType::IQ3_S,
                           GgmlType::TQ1_0,   GgmlType::TQ2_0};

// Unit importance for the formats ggml only quantizes with an importance matrix, else none.
std::vector<float> importance_for(GgmlType type, int64_t n) {
    return quant::requires_imatrix(type) ? std::vector<float>(static_cast<size_t>(n), 1.f) : std::vector<float>{};
}

bool has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool has_avx512() { return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }

// Values like trained weights: mostly Gaussian, some heavy outliers, an offset in some rows.
std::vector<float> random_row(int64_t n, std::mt19937& rng, float offset = 0) {
    std::normal_distribution<float> normal(0.f, 1.f);
    std::uniform_real_distribution<float> unit(0.f, 1.f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = offset + (unit(rng) < 0.02f ? 8.f : 1.f) * normal(rng);
    return v;
}

struct DotInputs {
    std::vector<uint8_t> w, a;        // quantized weight and activation rows
    std::vector<float> wf, af;        // their dequantizations
};

DotInputs make_inputs(GgmlType type, int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    const GgmlType at = quant::vec_dot_type(type);
    DotInputs in;
    in.w.resize(gguf::row_size(type, n));
    in.a.resize(gguf::row_size(at, n));
    const std::vector<float> wsrc = random_row(n, rng, seed % 2 ? 0.5f : 0.f), asrc = random_row(n, rng);
    const std::vector<float> imatrix = importance_for(type, n);
    quant::quantize_rows(type, wsrc.data(), in.w.data(), 1, n, imatrix.empty() ? nullptr : imatrix.data());
    quant::quantize_activation_row(at, asrc.data(), in.a.data(), n);
    in.wf.resize(n);
    in.af.resize(n);
    quant::dequantize_row(type, in.w.data(), in.wf.data(), n);
    quant::dequantize_row(at, in.a.data(), in.af.data(), n);
    return in;
}

class Dot : public ::testing::TestWithParam<GgmlType> {
protected:
    const quant::FormatOps& ops() const { return *quant::find_format(GetParam()); }
    std::vector<int64_t> lengths() const {
        const int64_t bs = gguf::type_traits(GetParam()).block_size;
        if (bs == 1) return {1, 15, 16, 37, 64, 1000, 4096};  // SIMD tails of every size
        if (bs == 32) return {32, 64, 7 * 32, 4096};          // odd block counts reach the AVX-512 tail
        return {256, 3 * 256, 4096};
    }
};

// Kernel results differ from each other only by float summation order: a relative tolerance on the
// sum of magnitudes bounds that.
void expect_close(float got, double want, double magnitude, const std::string& what) {
    EXPECT_NEAR(got, want, 1e-5 * magnitude + 1e-30) << what;
}

TEST_P(Dot, ScalarEqualsDotOfDequantizedRows) {
    for (int64_t n : lengths()) {
        const DotInputs in = make_inputs(GetParam(), n, static_cast<uint32_t>(n));
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
            want += static_cast<double>(in.wf[i]) * in.af[i];
            mag += std::fabs(static_cast<double>(in.wf[i]) * in.af[i]);
        }
        ASSERT_GT(mag, 0);
        expect_close(ops().dot_scalar(n, in.w.data(), in.a.data()), want, mag, "n=" + std::to_string(n));
    }
}

TEST_P(Dot, SimdLevelsEqualScalar) {
    if (!has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    ASSERT_NE(ops().dot_avx2, nullptr);
    ASSERT_NE(ops().dot_avx512, nullptr);
    for (int64_t n : lengths()) {
        for (uint32_t seed : {1u, 2u, 3u}) {
            const DotInputs in = make_inputs(GetParam(), n, seed * 1000 + static_cast<uint32_t>(n));
            double mag = 0;
            for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(in.wf[i]) * in.af[i]);
            const float ref = ops().dot_scalar(n, in.w.data(), in.a.data());
            const std::string what = "n=" + std::to_string(n) + " seed=" + std::to_string(seed);
            expect_close(ops().dot_avx2(n, in.w.data(), in.a.data()), ref, mag, "avx2 " + what);
            if (has_avx512()) expect_close(ops().dot_avx512(n, in.w.data(), in.a.data()), ref, mag, "avx512 " + what);
        }
    }
}

TEST_P(Dot, PublicEntryUsesTheDetectedLevel) {
    const DotInputs in = make_inputs(GetParam(), 4096, 11);
    const std::string level = quant::simd_level();
    const auto fn = level == "avx512" ? ops().dot_avx512 : level == "avx2" ? ops().dot_avx2 : ops().dot_scalar;
    EXPECT_EQ(quant::vec_dot(GetParam(), 4096, in.w.data(), in.a.data()), fn(4096, in.w.data(), in.a.data()));
    EXPECT_EQ(quant::dot_function(GetParam()), fn);
}

// Saturation and overflow corners: every level at its extreme against extreme activations.
TEST_P(Dot, ExtremeValuesDoNotOverflow) {
    if (!has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    const int64_t n = 4096;
    std::vector<float> w(n), a(n);
    for (int64_t i = 0; i < n; ++i) {
        w[i] = (i % 3 == 0) ? -1.f : 1.f;  // large levels of both signs
        a[i] = (i % 5 < 2) ? -1.f : 1.f;
    }
    const GgmlType at = quant::vec_dot_type(GetParam());
    std::vector<uint8_t> wq(gguf::row_size(GetParam(), n)), aq(gguf::row_size(at, n));
    const std::vector<float> imatrix = importance_for(GetParam(), n);
    quant::quantize_rows(GetParam(), w.data(), wq.data(), 1, n, imatrix.empty() ? nullptr : imatrix.data());
    quant::quantize_activation_row(at, a.data(), aq.data(), n);
    std::vector<float> wf(n), af(n);
    quant::dequantize_row(GetParam(), wq.data(), wf.data(), n);
    quant::dequantize_row(at, aq.data(), af.data(), n);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
        want += static_cast<double>(wf[i]) * af[i];
        mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
    }
    expect_close(ops().dot_scalar(n, wq.data(), aq.data()), want, mag, "scalar");
    expect_close(ops().dot_avx2(n, wq.data(), aq.data()), want, mag, "avx2");
    if (has_avx512()) expect_close(ops().dot_avx512(n, wq.data(), aq.data()), want, mag, "avx512");
}

INSTANTIATE_TEST_SUITE_P(Types, Dot, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

// The K-quant kernels are one source over both levels' vectors (kernels/dot_simd.inc); their integer
// sums are exact however a level splits them, and the float steps are the same, so the two levels
// must agree to the bit (floats and 32-blocks sum in level-wide lanes, the IQ kernels differ per level).
TEST(DotLevels, KQuantsAgreeToTheBit) {
    if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
    for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        const quant::FormatOps& ops = *quant::find_format(t);
        for (int64_t n : {256, 3 * 256, 4096}) {
            for (uint32_t seed : {4u, 5u, 6u}) {
                const DotInputs in = make_inputs(t, n, seed * 1000 + static_cast<uint32_t>(n));
                const float avx2 = ops.dot_avx2(n, in.w.data(), in.a.data());
                const float avx512 = ops.dot_avx512(n, in.w.data(), in.a.data());
                EXPECT_EQ(std::memcmp(&avx2, &avx512, sizeof avx2), 0)
                    << gguf::type_name(t) << " n=" << n << " seed=" << seed << ": " << avx2 << " vs " << avx512;
            }
        }
    }
}

// --- quantize_rows ------------------------------------------------------------------------------

const GgmlType kQuantTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                                GgmlType::Q5_K, GgmlType::Q6_K};

class Quantize : public ::testing::TestWithParam<GgmlType> {};

TEST_P(Quantize, ResultDoesNotDependOnThreadCount) {
    constexpr int64_t kRowsN = 48, kLen = 512;
    std::mt19937 rng(5);
    std::vector<float> src;
    for (int64_t r = 0; r < kRowsN; ++r) {
        const std::vector<float> row = random_row(kLen, rng, r % 3 ? 0.f : 0.3f);
        src.insert(src.end(), row.begin(), row.end());
    }
    std::vector<float> imatrix(kLen);
    for (float& v : imatrix) v = std::uniform_real_distribution<float>(0.01f, 4.f)(rng);
    const size_t bytes = gguf::row_size(GetParam(), kLen) * kRowsN;
    const int saved = omp_get_max_threads();
    for (const float* im : {static_cast<const float*>(nullptr), static_cast<const float*>(imatrix.data())}) {
        std::vector<uint8_t> one(bytes), many(bytes, 0xAA);
        omp_set_num_threads(1);
        EXPECT_EQ(quant::quantize_rows(GetParam(), src.data(), one.data(), kRowsN, kLen, im), bytes);
        for (int threads : {2, 3, 8}) {
            omp_set_num_threads(threads);
            quant::quantize_rows(GetParam(), src.data(), many.data(), kRowsN, kLen, im);
            EXPECT_EQ(std::memcmp(one.data(), many.data(), bytes), 0) << threads << " threads, imatrix " << (im != nullptr);
        }
        // Row by row gives the same bytes too: nothing depends on the neighbouring rows.
        const size_t row_bytes = bytes / kRowsN;
        for (int64_t r = 0; r < kRowsN; r += 7) {
            std::vector<uint8_t> single(row_bytes);
            quant::quantize_rows(GetParam(), src.data() + r * kLen, single.data(), 1, kLen, im);
            EXPECT_EQ(std::memcmp(single.data(), one.data() + r * row_bytes, row_bytes), 0) << "row " << r;
        }
    }
    omp_set_num_threads(saved);
}

// Rows that break naive scale searches: all zero, constant, alternating, one outlier, tiny values.
TEST_P(Quantize, AwkwardRowsRoundTripFinite) {
    constexpr int64_t kLen = 256;
    std::vector<std::vector<float>> rows(6, std::vector<float>(kLen));
    for (int64_t i = 0; i < kLen; ++i) {
        rows[0][i] = 0.f;
        rows[1][i] = 0.75f;
        rows[2][i] = -3.f;
        rows[3][i] = i % 2 ? 1.f : -1.f;
        rows[4][i] = i == 77 ? 1000.f : 1e-3f * static_cast<float>(i % 7);
        rows[5][i] = 1e-30f * static_cast<float>(i - 128);
    }
    std::vector<float> imatrix(kLen, 1.f);
    imatrix[3] = 0.f;  // a column that was never active
    for (const float* im : {static_cast<const float*>(nullptr), static_cast<const float*>(imatrix.data())}) {
        for (size_t r = 0; r < rows.size(); ++r) {
            std::vector<uint8_t> q(gguf::row_size(GetParam(), kLen));
            std::vector<float> back(kLen);
            quant::quantize_rows(GetParam(), rows[r].data(), q.data(), 1, kLen, im);
            quant::dequantize_row(GetParam(), q.data(), back.data(), kLen);
            double err = 0, norm = 0;
            for (int64_t i = 0; i < kLen; ++i) {
                ASSERT_TRUE(std::isfinite(back[i])) << "row " << r << " element " << i;
                err += (back[i] - rows[r][i]) * static_cast<double>(back[i] - rows[r][i]);
                norm += rows[r][i] * static_cast<double>(rows[r][i]);
            }
            if (r == 0) {
                EXPECT_EQ(err, 0) << "zeros stay zeros";
            } else if (r <= 3) {
                EXPECT_LE(std::sqrt(err / norm), 0.35) << "row " << r << " imatrix " << (im != nullptr);
            }
        }
    }
}

TEST_P(Quantize, ErrorIsWithinTheFormatsPrecision) {
    constexpr int64_t kRowsN = 16, kLen = 1024;
    std::mt19937 rng(9);
    std::vector<float> src;
    for (int64_t r = 0; r < kRowsN; ++r) {
        std::normal_distribution<float> normal(0.f, 0.02f);
        for (int64_t i = 0; i < kLen; ++i) src.push_back(normal(rng));
    }
    std::vector<uint8_t> q(gguf::row_size(GetParam(), kLen) * kRowsN);
    quant::quantize_rows(GetParam(), src.data(), q.data(), kRowsN, kLen);
    std::vector<float> back(src.size());
    for (int64_t r = 0; r < kRowsN; ++r) {
        quant::dequantize_row(GetParam(), q.data() + r * q.size() / kRowsN, back.data() + r * kLen, kLen);
    }
    double err = 0, norm = 0;
    for (size_t i = 0; i < src.size(); ++i) {
        err += (back[i] - src[i]) * static_cast<double>(back[i] - src[i]);
        norm += src[i] * static_cast<double>(src[i]);
    }
    // Roughly ggml's Gaussian figures with ~20% headroom: a bit per level halves the error.
    const double bound = GetParam() == GgmlType::Q8_0   ? 0.008
                         : GetParam() == GgmlType::Q6_K ? 0.025
                         : GetParam() == GgmlType::Q2_K ? 0.40
                         : GetParam() == GgmlType::Q3_K ? 0.21
                         : (GetParam() == GgmlType::Q5_0 || GetParam() == GgmlType::Q5_1 ||
                            GetParam() == GgmlType::Q5_K)
                             ? 0.06
                             : 0.12;
    EXPECT_LE(std::sqrt(err / norm), bound);
}

TEST_P(Quantize, NonFiniteInputIsAnErrorNamingTheRow) {
    std::vector<float> src(4 * 256, 0.5f);
    src[2 * 256 + 10] = NAN;
    std::vector<uint8_t> q(gguf::row_size(GetParam(), 256) * 4);
    try {
        quant::quantize_rows(GetParam(), src.data(), q.data(), 4, 256);
        FAIL() << "NaN accepted";
    } catch (const quant::Error& e) {
        EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
    }
    src[2 * 256 + 10] = INFINITY;
    EXPECT_THROW(quant::quantize_rows(GetParam(), src.data(), q.data(), 4, 256), quant::Error);
}

INSTANTIATE_TEST_SUITE_P(Types, Quantize, ::testing::ValuesIn(kQuantTypes),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

TEST(Q8K, ActivationQuantizationKeepsBlockSums) {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> x(512);
    for (float& v : x) v = normal(rng);
    std::vector<uint8_t> q(gguf::row_size(GgmlType::Q8_K, 512));
    quant::quantize_activation_row(GgmlType::Q8_K, x.data(), q.data(), 512);
    std::vector<float> back(512);
    quant::dequantize_row(GgmlType::Q8_K, q.data(), back.data(), 512);
    double err = 0, norm = 0;
    for (int i = 0; i < 512; ++i) {
        err += (back[i] - x[i]) * static_cast<double>(back[i] - x[i]);
        norm += x[i] * static_cast<double>(x[i]);
    }
    EXPECT_LE(std::sqrt(err / norm), 0.012);  // a 255-level grid over about +-3 sigma
    // Block layout: f32 d, 256 int8 quants, 16 int16 sums of 16 quants each.
    for (int b = 0; b < 2; ++b) {
        const uint8_t* block = q.data() + 292 * b;
        for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += static_cast<int8_t>(block[4 + 16 * j + l]);
            int16_t stored;
            std::memcpy(&stored, block + 4 + 256 + 2 * j, 2);
            EXPECT_EQ(stored, sum);
        }
    }
}

}  // namespace
