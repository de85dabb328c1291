// The tile kernels of quant/gemm.h against the scalar dot product (libquant's reference kernel per
// format, reached through its private format table): every weight row x activation row of a tile,
// for each number of activation rows, on sizes with one and several blocks. Each kernel the CPU can
// run is tested, not only the one gemm_function picks.
#include "quant/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "format_ops.h"
#include "gemm_kernels.h"
#include "quant/blocks.h"
#include "quant/float16.h"
#include "quant/quant.h"

namespace {

using gguf::GgmlType;

struct Kernel {
    GgmlType type;
    quant::GemmFn fn;
    bool runs;  // the CPU has the instructions
};

std::ostream& operator<<(std::ostream& os, const Kernel& k) { return os << k.type; }

class GemmTest : public ::testing::TestWithParam<Kernel> {};

TEST_P(GemmTest, MatchesScalarDot) {
    const GgmlType type = GetParam().type;
    const quant::GemmFn gemm = GetParam().fn;
    if (!GetParam().runs) GTEST_SKIP() << "the CPU lacks this kernel's instructions";
    const auto scalar_dot = quant::find_format(type)->dot_scalar;
    const GgmlType act = quant::vec_dot_type(type);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t block = gguf::type_traits(type).block_size;
    // an odd count of 32-blocks exercises the Q8_0 kernel's unpaired last block
    for (const int64_t n : {block, 3 * block, int64_t{768}}) {
        if (n % block != 0) continue;
        const size_t w_bytes = gguf::row_size(type, n), a_bytes = gguf::row_size(act, n);
        std::vector<float> f(static_cast<size_t>(n));
        // weight rows 3 bytes apart beyond their size: the stride is the caller's, not the row size
        const size_t stride = w_bytes + 3;
        std::vector<uint8_t> w(stride * quant::kGemmRows), a(a_bytes * quant::kGemmCols);
        for (int r = 0; r < quant::kGemmRows; ++r) {
            for (auto& v : f) v = normal(rng) * (r + 1);
            quant::quantize_rows(type, f.data(), w.data() + r * stride, 1, n);
        }
        for (int c = 0; c < quant::kGemmCols; ++c) {
            for (auto& v : f) v = normal(rng) * (c % 2 ? 10.0f : 0.1f);
            quant::quantize_activation_row(act, f.data(), a.data() + c * a_bytes, n);
        }
        for (int nc = 1; nc <= quant::kGemmCols; ++nc) {
            const void* as[quant::kGemmCols];
            for (int c = 0; c < nc; ++c) as[c] = a.data() + c * a_bytes;
            float out[quant::kGemmRows * quant::kGemmCols];
            gemm(n, w.data(), stride, as, nc, out);
            for (int r = 0; r < quant::kGemmRows; ++r) {
                for (int c = 0; c < nc; ++c) {
                    const float want = scalar_dot(n, w.data() + r * stride, as[c]);
                    EXPECT_NEAR(out[r * quant::kGemmCols + c], want, 1e-5f * std::max(1.0f, std::fabs(want)))
                        << "n=" << n << " nc=" << nc << " r=" << r << " c=" << c;
                }
            }
        }
    }
}

const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni");
const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");

INSTANTIATE_TEST_SUITE_P(Kernels, GemmTest,
                         ::testing::Values(Kernel{GgmlType::Q8_0, quant::gemm_q8_0_q8_0_avx512, avx512},
                                           Kernel{GgmlType::Q8_0, quant::gemm_q8_0_q8_0_avx512vnni, vnni},
                                           Kernel{GgmlType::Q4_0, quant::gemm_q4_0_q8_0_avx512, avx512},
                                           Kernel{GgmlType::Q4_0, quant::gemm_q4_0_q8_0_avx512vnni, vnni},
                                           Kernel{GgmlType::Q2_K, quant::gemm_q2_k_q8_k_avx512, avx512},
                                           Kernel{GgmlType::Q3_K, quant::gemm_q3_k_q8_k_avx512, avx512},
                                           Kernel{GgmlType::Q4_K, quant::gemm_q4_k_q8_k_avx512, avx512},
                                           Kernel{GgmlType::Q5_K, quant::gemm_q5_k_q8_k_avx512, avx512},
                                           Kernel{GgmlType::Q6_K, quant::gemm_q6_k_q8_k_avx512, avx512},
                                           Kernel{GgmlType::Q8_0, quant::gemm_q8_0_q8_0_avx2, avx2},
                                           Kernel{GgmlType::Q4_0, quant::gemm_q4_0_q8_0_avx2, avx2},
                                           Kernel{GgmlType::Q2_K, quant::gemm_q2_k_q8_k_avx2, avx2},
                                           Kernel{GgmlType::Q3_K, quant::gemm_q3_k_q8_k_avx2, avx2},
                                           Kernel{GgmlType::Q4_K, quant::gemm_q4_k_q8_k_avx2, avx2},
                                           Kernel{GgmlType::Q5_K, quant::gemm_q5_k_q8_k_avx2, avx2},
                                           Kernel{GgmlType::Q6_K, quant::gemm_q6_k_q8_k_avx2, avx2}));

// The AVX-512 and AVX2 activation quantizers (the level's through quantize_activations, and each one
// the CPU runs directly) write the reference's bytes: random rows, an all-zero block, and
// blocks whose scale is 1 so that halves are exact ties (to even, as ggml's x86 code rounds them),
// with the largest magnitude negative and appearing with both signs (the first one sets Q8_K's sign).
TEST(QuantizeActivations, BitExactWithReference) {
    for (const GgmlType act : {GgmlType::Q8_0, GgmlType::Q8_K}) {
        const int64_t n = 1024;
        std::vector<float> x(static_cast<size_t>(n));
        std::mt19937 rng(3);
        std::normal_distribution<float> normal(0.0f, 2.0f);
        for (auto& v : x) v = normal(rng);
        for (int64_t i = 256; i < 512; ++i) x[i] = 0.0f;
        for (int64_t i = 512; i < 768; ++i) x[i] = static_cast<float>(i % 200 - 100) + 0.5f;
        for (int64_t i = 512; i < 768; i += 32) x[i] = -127.0f;
        x[520] = 127.0f;
        const size_t bytes = gguf::row_size(act, n);
        std::vector<uint8_t> want(bytes), got(bytes);
        quant::quantize_activation_row(act, x.data(), want.data(), n);
        quant::quantize_activations(act, x.data(), got.data(), n);
        EXPECT_EQ(got, want) << act;
        using Quantizer = void (*)(const float*, void*, int64_t);
        const bool q8_0 = act == GgmlType::Q8_0;
        const std::pair<Quantizer, bool> direct[] = {
            {q8_0 ? quant::quantize_q8_0_avx512 : quant::quantize_q8_k_avx512, avx512},
            {q8_0 ? quant::quantize_q8_0_avx2 : quant::quantize_q8_k_avx2, avx2}};
        for (const auto& [quantize, runs] : direct) {
            if (!runs) continue;
            std::fill(got.begin(), got.end(), uint8_t{0xAA});
            quantize(x.data(), got.data(), n);
            EXPECT_EQ(got, want) << act;
        }
    }
}

// Q8_0 activations are rounded as ggml's x86 CPU backend rounds them (the multiplier 127 / amax, ties
// to even), not as its reference weight quantizer (1 / (amax / 127), ties away), which quantize_rows
// keeps for llama-quantize's bytes. The block below is the one that parted gguf-run from
// llama-perplexity on the tiny qwen35moe reference: 0.677810609 times the two multipliers is
// 45.4999962 and 45.5000038.
TEST(QuantizeActivations, Q8_0RoundsAsGgmlOnX86) {
    std::vector<float> x(64, 0.25f);
    x[0] = 1.89191091f;  // the block's largest magnitude
    x[1] = 0.677810609f;
    for (int i = 32; i < 64; ++i) x[i] = static_cast<float>(i - 48) + 0.5f;  // exact halves: amax 15.5
    x[32] = 127.0f;                                                         // scale 1
    std::vector<quant::BlockQ8_0> act(2), weight(2);
    quant::quantize_activation_row(GgmlType::Q8_0, x.data(), act.data(), 64);
    quant::quantize_rows(GgmlType::Q8_0, x.data(), weight.data(), 1, 64);
    EXPECT_EQ(act[0].qs[0], 127);
    EXPECT_EQ(act[0].qs[1], 46);
    EXPECT_EQ(weight[0].qs[1], 45);
    for (int i = 33; i < 64; ++i) {
        const float v = x[static_cast<size_t>(i)];
        EXPECT_EQ(act[1].qs[i - 32], static_cast<int8_t>(std::nearbyint(v))) << v;  // to even
        EXPECT_EQ(weight[1].qs[i - 32], static_cast<int8_t>(std::round(v))) << v;  // away from zero
    }
    // every SIMD level writes the same bytes (BitExactWithReference covers the rest)
    std::vector<quant::BlockQ8_0> got(2);
    quant::quantize_activations(GgmlType::Q8_0, x.data(), got.data(), 64);
    EXPECT_EQ(std::memcmp(got.data(), act.data(), sizeof(quant::BlockQ8_0) * 2), 0);
}

// Q4_1 and Q5_1 keep Q8_0 activations, where ggml's CPU backend gives them Q8_1: the same quants plus
// s = fp16(d * sum(q)) for the weights' offset term m * s. gguf-run's offset term is m * fp16(d) *
// sum(q), one scale for both terms of a block. On rows with offsets (where that term matters) it is
// the more accurate of the two against the exact dot of the dequantized weights with f32 activations,
// which is why gguf-run does not follow llama.cpp here (docs/quantize.md: the one place qwen35moe's
// IQ4_XS file, whose fallbacks include Q5_1, still parts the two engines).
TEST(QuantizeActivations, Q4_1AndQ5_1DotsBeatGgmlsQ8_1) {
    const int64_t n = 256, rows = 3000;
    for (const GgmlType type : {GgmlType::Q4_1, GgmlType::Q5_1}) {
        ASSERT_EQ(quant::vec_dot_type(type), GgmlType::Q8_0);
        const size_t wbytes = gguf::row_size(type, n), block_bytes = wbytes / (n / 32);
        for (const float w_offset : {0.3f, 1.0f}) {
            for (const float a_offset : {0.5f, 2.0f}) {
                std::mt19937 rng(7);
                std::normal_distribution<float> wn(w_offset, 1.0f), an(a_offset, 1.0f);
                std::vector<float> w(n), x(n), deq(n);
                std::vector<uint8_t> wq(wbytes);
                std::vector<quant::BlockQ8_0> a(n / 32);
                double err_ours = 0, err_q8_1 = 0;
                for (int64_t r = 0; r < rows; ++r) {
                    for (auto& v : w) v = wn(rng);
                    for (auto& v : x) v = an(rng);
                    quant::quantize_rows(type, w.data(), wq.data(), 1, n);
                    quant::dequantize_row(type, wq.data(), deq.data(), n);
                    quant::quantize_activation_row(GgmlType::Q8_0, x.data(), a.data(), n);
                    double exact = 0;
                    for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(deq[i]) * x[i];
                    const double ours = quant::vec_dot(type, n, wq.data(), a.data());
                    // ggml's: the same, with each block's offset term taken from s instead
                    double q8_1 = ours;
                    for (int64_t b = 0; b < n / 32; ++b) {
                        uint16_t m_bits;  // Q4_1 and Q5_1 blocks both start with fp16 d, fp16 m
                        std::memcpy(&m_bits, wq.data() + b * block_bytes + 2, 2);
                        float amax = 0;
                        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
                        int sum_q = 0;
                        for (int j = 0; j < 32; ++j) sum_q += a[b].qs[j];
                        const float m = quant::f16_to_f32(m_bits);
                        const float s = quant::f16_to_f32(quant::f32_to_f16(amax / 127.f * static_cast<float>(sum_q)));
                        q8_1 += static_cast<double>(m) * s - static_cast<double>(m) * quant::f16_to_f32(a[b].d) * sum_q;
                    }
                    err_ours += (ours - exact) * (ours - exact);
                    err_q8_1 += (q8_1 - exact) * (q8_1 - exact);
                }
                EXPECT_LT(err_ours, err_q8_1) << type << " offsets " << w_offset << ", " << a_offset;
                std::printf("%s offsets %.1f/%.1f: rms dot error %.4g, with ggml's Q8_1 %.4g\n",
                            std::string(gguf::type_name(type)).c_str(), w_offset, a_offset, std::sqrt(err_ours / rows),
                            std::sqrt(err_q8_1 / rows));
            }
        }
    }
}

// gemm_function offers a kernel exactly where the SIMD level has one, and none for other types.
TEST(GemmFunction, ByTypeAndLevel) {
    const std::string level = quant::simd_level();
    const bool offered = level == "avx512" || level == "avx2";
    for (const GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                             GgmlType::Q5_K, GgmlType::Q6_K}) {
        EXPECT_EQ(quant::gemm_function(t) != nullptr, offered) << t;
    }
    EXPECT_EQ(quant::gemm_function(GgmlType::IQ4_XS), nullptr);
    EXPECT_EQ(quant::gemm_function(GgmlType::BF16), nullptr);
}

}  // namespace
