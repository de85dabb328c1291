// The CPU matmul against a plain f32 reference on dequantized weights: float weights (dotted with f32
// activations) agree to rounding, block-quantized weights (activations quantized to the vec_dot type)
// to the activation quantization error; batched and single-row results agree. The 1e-6 bound of F16
// and BF16 pins that their activations stay f32: llama.cpp's CPU backend rounds them to the weights'
// type (an error near 1e-3 for BF16), which docs/quantize.md shows moving a BF16 file's perplexity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/matmul.h"
#include "quant/quant.h"

namespace {

using gguf::GgmlType;
using runtime::cpu::Activations;

struct Case {
    GgmlType type;
    double tolerance;  // relative to the norm of the reference output
};

class MatmulTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulTest, MatchesDequantizedReference) {
    const Case c = GetParam();
    if (!quant::can_quantize(c.type)) GTEST_SKIP() << gguf::type_name(c.type) << " not in this libquant";
    const int64_t n_in = 512, n_out = 37, n_tok = 7;
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(n_in * n_out)), x(static_cast<size_t>(n_in * n_tok));
    for (auto& v : wf) v = normal(rng);
    for (auto& v : x) v = normal(rng);

    runtime::Weight w;
    w.type = c.type;
    w.n_in = n_in;
    w.n_out = n_out;
    w.row_bytes = gguf::row_size(c.type, n_in);
    std::vector<uint8_t> bytes(w.row_bytes * n_out);
    quant::quantize_rows(c.type, wf.data(), bytes.data(), n_out, n_in);
    w.data = bytes.data();

    std::vector<float> deq(static_cast<size_t>(n_in));
    std::vector<double> ref(static_cast<size_t>(n_out * n_tok));
    for (int64_t r = 0; r < n_out; ++r) {
        quant::dequantize_row(c.type, w.row(0, r), deq.data(), n_in);
        for (int64_t t = 0; t < n_tok; ++t) {
            double s = 0;
            for (int64_t i = 0; i < n_in; ++i) s += double(deq[i]) * x[t * n_in + i];
            ref[t * n_out + r] = s;
        }
    }

    Activations acts;
    acts.reserve(n_tok, n_in);
    acts.set(x.data(), n_tok, n_in, n_in);
    std::vector<float> y(static_cast<size_t>(n_out * n_tok));
    runtime::cpu::matmul(w, 0, acts, y.data(), n_out, 2);
    double err = 0, norm = 0;
    for (size_t i = 0; i < y.size(); ++i) {
        err = std::max(err, std::fabs(y[i] - ref[i]));
        norm = std::max(norm, std::fabs(ref[i]));
    }
    EXPECT_LE(err / norm, c.tolerance) << gguf::type_name(c.type);

    // one activation row through the same kernels gives the same numbers as inside the batch
    Activations one;
    one.reserve(1, n_in);
    one.set(x.data() + 3 * n_in, 1, n_in, n_in);
    std::vector<float> y1(static_cast<size_t>(n_out));
    runtime::cpu::matmul(w, 0, one, y1.data(), n_out, 1);
    for (int64_t r = 0; r < n_out; ++r) EXPECT_NEAR(y1[r], y[3 * n_out + r], 1e-4 * norm);
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTest,
                         ::testing::Values(Case{GgmlType::F32, 1e-6}, Case{GgmlType::F16, 1e-6},
                                           Case{GgmlType::BF16, 1e-6}, Case{GgmlType::Q8_0, 1e-2},
                                           Case{GgmlType::Q4_0, 1e-2}, Case{GgmlType::Q4_K, 2e-2},
                                           Case{GgmlType::Q5_K, 2e-2}, Case{GgmlType::Q6_K, 2e-2},
                                           Case{GgmlType::Q3_K, 2e-2}, Case{GgmlType::IQ4_XS, 2e-2},
                                           Case{GgmlType::MXFP4, 2e-2}),
                         [](const auto& info) { return std::string(gguf::type_name(info.param.type)); });

}  // namespace

namespace {

// A matrix too large to stay in cache between tokens: one activation row takes the per-row dot for
// Q8_0 and Q6_K (a batch takes the tiles); both agree with the dequantized reference.
TEST(MatmulLarge, SingleRowOnAStreamingMatrixMatchesTheBatch) {
    for (const GgmlType type : {GgmlType::Q8_0, GgmlType::Q6_K}) {
        const int64_t n_in = 4096, n_out = 5200, n_tok = 3;
        runtime::Weight w;
        w.type = type;
        w.n_in = n_in;
        w.n_out = n_out;
        w.row_bytes = gguf::row_size(type, n_in);
        ASSERT_GT(w.row_bytes * n_out, size_t{16} << 20);
        // random blocks with a fixed small scale: every byte pattern is a valid quant
        std::vector<uint8_t> bytes(w.row_bytes * n_out);
        std::mt19937 rng(5);
        for (auto& b : bytes) b = static_cast<uint8_t>(rng());
        const uint16_t d = 0x1400;  // fp16 2^-10
        const size_t block = type == GgmlType::Q8_0 ? 34 : 210, d_at = type == GgmlType::Q8_0 ? 0 : 208;
        for (size_t i = 0; i < bytes.size(); i += block) {
            std::memcpy(&bytes[i + d_at], &d, 2);
            if (type == GgmlType::Q6_K) {
                for (int j = 0; j < 16; ++j) bytes[i + 192 + j] = static_cast<uint8_t>(1 + bytes[i + 192 + j] % 15);
            }
        }
        w.data = bytes.data();
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(static_cast<size_t>(n_in * n_tok));
        for (auto& v : x) v = normal(rng);

        Activations batch;
        batch.reserve(n_tok, n_in);
        batch.set(x.data(), n_tok, n_in, n_in);
        std::vector<float> y(static_cast<size_t>(n_out * n_tok));
        runtime::cpu::matmul(w, 0, batch, y.data(), n_out, 2);
        Activations one;
        one.reserve(1, n_in);
        one.set(x.data() + n_in, 1, n_in, n_in);
        std::vector<float> y1(static_cast<size_t>(n_out));
        runtime::cpu::matmul(w, 0, one, y1.data(), n_out, 2);

        std::vector<float> deq(static_cast<size_t>(n_in));
        double err = 0, norm = 0;
        for (int64_t r = 0; r < n_out; ++r) {
            quant::dequantize_row(type, w.row(0, r), deq.data(), n_in);
            double ref = 0;
            for (int64_t i = 0; i < n_in; ++i) ref += double(deq[i]) * x[n_in + i];
            err = std::max(err, std::fabs(y1[r] - ref));
            norm = std::max(norm, std::fabs(ref));
            EXPECT_NEAR(y1[r], y[n_out + r], 1e-4 * std::max(1.0, std::fabs(ref))) << gguf::type_name(type) << " row " << r;
        }
        EXPECT_LE(err / norm, 1e-2) << gguf::type_name(type);
    }
}

}  // namespace

namespace {

// A batch of 8 or more tokens takes the panels (quant/panel.h) where the CPU has them: every row,
// in the full 16-row panels and in the rows left over, agrees with the per-row dot, whatever the
// thread count.
TEST(MatmulPanels, BatchMatchesPerRowDots) {
    const int64_t n_in = 512, n_out = 37;
    const int n_tok = 11;
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
        std::vector<float> wf(static_cast<size_t>(n_in * n_out)), x(static_cast<size_t>(n_in * n_tok));
        for (auto& v : wf) v = normal(rng);
        for (auto& v : x) v = normal(rng);
        runtime::Weight w;
        w.type = type;
        w.n_in = n_in;
        w.n_out = n_out;
        w.row_bytes = gguf::row_size(type, n_in);
        std::vector<uint8_t> bytes(w.row_bytes * n_out);
        quant::quantize_rows(type, wf.data(), bytes.data(), n_out, n_in);
        w.data = bytes.data();

        const GgmlType act = quant::vec_dot_type(type);
        std::vector<uint8_t> a(gguf::row_size(act, n_in));
        std::vector<float> y1, y3;
        for (int threads : {1, 3}) {
            Activations acts;
            acts.reserve(n_tok, n_in);
            acts.set(x.data(), n_tok, n_in, n_in);
            std::vector<float>& y = threads == 1 ? y1 : y3;
            y.assign(static_cast<size_t>(n_out * n_tok), 0.0f);
            runtime::cpu::matmul(w, 0, acts, y.data(), n_out, threads);
        }
        EXPECT_EQ(y1, y3) << gguf::type_name(type);
        for (int t = 0; t < n_tok; ++t) {
            quant::quantize_activation_row(act, x.data() + t * n_in, a.data(), n_in);
            for (int64_t r = 0; r < n_out; ++r) {
                const float want = quant::vec_dot(type, n_in, w.row(0, r), a.data());
                EXPECT_NEAR(y1[t * n_out + r], want, 1e-4f * std::max(1.0f, std::fabs(want)))
                    << gguf::type_name(type) << " token " << t << " row " << r;
            }
        }
    }
}

}  // namespace
