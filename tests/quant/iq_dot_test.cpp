// Dot-product kernels of the IQ / MXFP4 / TQ formats: the scalar reference equals the dot of the
// dequantized rows, and every SIMD level this CPU has agrees with the scalar one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "block_common.h"
#include "format_ops.h"
#include "quant/float16.h"
#include "quant/quant.h"

namespace {

// The formats under test; their kernels come from the registry's table, one per SIMD level.
const char* const kTypes[] = {"iq4_nl", "iq4_xs", "mxfp4", "tq1_0", "tq2_0", "iq3_s", "iq3_xxs", "iq2_s", "iq2_xs", "iq2_xxs",
                             "iq1_s",  "iq1_m"};

bool has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool has_avx512() { return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }

// A weight row quantized through the public API and an activation row built directly in the block
// layout (random int8 levels, full range, and random scales), with both dequantized to floats.
struct Rows {
    std::vector<uint8_t> w, a;
    std::vector<float> wf, af;
};

Rows make_rows(gguf::GgmlType type, int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> gauss(0.f, 0.02f);
    std::uniform_int_distribution<int> level(-127, 127);
    std::uniform_real_distribution<float> scale(1e-4f, 1e-2f);
    Rows r;
    std::vector<float> x(n), imatrix(n);
    for (auto& v : x) v = gauss(rng);
    for (auto& v : imatrix) v = scale(rng) * 100;
    r.w.resize(gguf::row_size(type, n));
    quant::quantize_rows(type, x.data(), r.w.data(), 1, n, imatrix.data());
    r.wf.resize(n);
    quant::dequantize_row(type, r.w.data(), r.wf.data(), n);

    r.af.resize(n);
    if (quant::vec_dot_type(type) == gguf::GgmlType::Q8_0) {
        std::vector<quant::BlockQ8_0> blocks(n / quant::kQK);
        for (size_t b = 0; b < blocks.size(); ++b) {
            blocks[b].d = quant::f32_to_f16(scale(rng));
            const float d = quant::f16_to_f32(blocks[b].d);
            for (int j = 0; j < quant::kQK; ++j) {
                blocks[b].qs[j] = static_cast<int8_t>(level(rng));
                r.af[b * quant::kQK + j] = d * blocks[b].qs[j];
            }
        }
        r.a.resize(blocks.size() * sizeof(quant::BlockQ8_0));
        std::memcpy(r.a.data(), blocks.data(), r.a.size());
    } else {
        std::vector<quant::BlockQ8_K> blocks(n / quant::kQKK);
        for (size_t b = 0; b < blocks.size(); ++b) {
            blocks[b].d = scale(rng);
            for (int j = 0; j < quant::kQKK; ++j) {
                blocks[b].qs[j] = static_cast<int8_t>(level(rng));
                r.af[b * quant::kQKK + j] = blocks[b].d * blocks[b].qs[j];
            }
            for (int g = 0; g < quant::kQKK / 16; ++g) {
                int s = 0;
                for (int j = 0; j < 16; ++j) s += blocks[b].qs[16 * g + j];
                blocks[b].bsums[g] = static_cast<int16_t>(s);
            }
        }
        r.a.resize(blocks.size() * sizeof(quant::BlockQ8_K));
        std::memcpy(r.a.data(), blocks.data(), r.a.size());
    }
    return r;
}

class IqDot : public testing::TestWithParam<const char*> {
protected:
    gguf::GgmlType type() const { return *gguf::type_from_name(GetParam()); }
    const quant::FormatOps& ops() const { return *quant::find_format(type()); }
    // Row lengths: one block, an odd number of 32-blocks where the format allows, and a long row.
    std::vector<int64_t> lengths() const {
        const int64_t bs = gguf::type_traits(type()).block_size;
        return bs == 32 ? std::vector<int64_t>{32, 32 * 13, 4096} : std::vector<int64_t>{256, 4096};
    }
};

TEST_P(IqDot, ScalarEqualsDotOfDequantizedRows) {
    for (const int64_t n : lengths()) {
        const Rows r = make_rows(type(), n, static_cast<uint32_t>(n));
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
            want += static_cast<double>(r.wf[i]) * r.af[i];
            mag += std::fabs(static_cast<double>(r.wf[i]) * r.af[i]);
        }
        const float got = ops().dot_scalar(n, r.w.data(), r.a.data());
        EXPECT_NEAR(got, want, 1e-5 * mag) << GetParam() << " n=" << n;
    }
}

TEST_P(IqDot, SimdMatchesScalar) {
    if (!has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    for (const int64_t n : lengths()) {
        const Rows r = make_rows(type(), n, static_cast<uint32_t>(n) + 7);
        const float ref = ops().dot_scalar(n, r.w.data(), r.a.data());
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(r.wf[i]) * r.af[i]);
        if (ops().dot_avx2) {
            EXPECT_NEAR(ops().dot_avx2(n, r.w.data(), r.a.data()), ref, 1e-5 * mag) << "avx2 n=" << n;
        }
        if (ops().dot_avx512 && has_avx512()) {
            EXPECT_NEAR(ops().dot_avx512(n, r.w.data(), r.a.data()), ref, 1e-5 * mag) << "avx512 n=" << n;
        }
        // The public entry point dispatches to one of the above.
        EXPECT_NEAR(quant::vec_dot(type(), n, r.w.data(), r.a.data()), ref, 1e-5 * mag);
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, IqDot, testing::ValuesIn(kTypes),
                         [](const testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

}  // namespace
