// The panel kernels of quant/panel.h against each format's scalar dot product, bit for bit: every row of a panel
// times every activation row, for each number of activation rows, on one and several super-blocks,
// with rows further apart than their size; and the extreme inputs (largest quants, scales and
// activations) where an integer sum would overflow if a kernel's bounds were wrong.
#include "quant/panel.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "format_ops.h"
#include "quant/blocks.h"
#include "quant/float16.h"
#include "quant/quant.h"

namespace {

using gguf::GgmlType;

class PanelTest : public ::testing::TestWithParam<GgmlType> {};

struct Aligned {
    explicit Aligned(size_t n) : p(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {}
    ~Aligned() { std::free(p); }
    uint8_t* p;
};

// Runs the panel on rows w (stride apart) and activations a; checks each result against the scalar dot.
void check(GgmlType type, int64_t n, const uint8_t* w, size_t stride, const std::vector<uint8_t>& a, size_t a_bytes) {
    const quant::PanelKernels* k = quant::panel_kernels(type);
    ASSERT_NE(k, nullptr);
    const auto scalar_dot = quant::find_format(type)->dot_scalar;
    Aligned panel(k->bytes(n));
    k->pack(n, w, stride, panel.p);
    for (int nc = 1; nc <= quant::kPanelCols; ++nc) {
        const void* as[quant::kPanelCols];
        float out[quant::kPanelCols][quant::kPanelRows];
        float* outs[quant::kPanelCols];
        for (int c = 0; c < nc; ++c) {
            as[c] = a.data() + c * a_bytes;
            outs[c] = out[c];
        }
        k->gemm(n, panel.p, as, nc, outs);
        for (int r = 0; r < quant::kPanelRows; ++r) {
            for (int c = 0; c < nc; ++c) {
                const float want = scalar_dot(n, w + r * stride, as[c]);
                EXPECT_EQ(out[c][r], want)
                    << "n=" << n << " nc=" << nc << " r=" << r << " c=" << c;
            }
        }
    }
}

TEST_P(PanelTest, MatchesScalarDot) {
    const GgmlType type = GetParam();
    if (!quant::panel_kernels(type)) GTEST_SKIP() << "no panel kernel on this CPU";
    const GgmlType act = quant::vec_dot_type(type);
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const int64_t n : {int64_t{256}, int64_t{768}, int64_t{2048}, int64_t{96}}) {
        if (n % gguf::type_traits(type).block_size != 0) continue;
        const size_t w_bytes = gguf::row_size(type, n), a_bytes = gguf::row_size(act, n);
        const size_t stride = w_bytes + 3;  // the caller's stride, not the row size
        std::vector<float> f(static_cast<size_t>(n));
        std::vector<uint8_t> w(stride * quant::kPanelRows), a(a_bytes * quant::kPanelCols);
        for (int r = 0; r < quant::kPanelRows; ++r) {
            for (auto& v : f) v = normal(rng) * static_cast<float>(r + 1) + (r % 3 == 0 ? 0.5f : 0.0f);
            quant::quantize_rows(type, f.data(), w.data() + r * stride, 1, n);
        }
        for (int c = 0; c < quant::kPanelCols; ++c) {
            for (auto& v : f) v = normal(rng) * (c % 2 ? 10.0f : 0.1f);
            quant::quantize_activation_row(act, f.data(), a.data() + c * a_bytes, n);
        }
        check(type, n, w.data(), stride, a, a_bytes);
    }
}

TEST_P(PanelTest, ExtremeValuesDoNotOverflow) {
    const GgmlType type = GetParam();
    if (!quant::panel_kernels(type)) GTEST_SKIP() << "no panel kernel on this CPU";
    const int64_t n = 2048;
    const GgmlType act = quant::vec_dot_type(type);
    const size_t w_bytes = gguf::row_size(type, n), a_bytes = gguf::row_size(act, n);
    // every quant and scale at its largest magnitude: all bits set, then the fp16 scales made finite
    std::vector<uint8_t> w(w_bytes * quant::kPanelRows, 0xff), a(a_bytes * quant::kPanelCols);
    if (type == GgmlType::Q8_0) {
        for (int64_t b = 0; b < n / quant::kQK * quant::kPanelRows; ++b) {
            auto* x = reinterpret_cast<quant::BlockQ8_0*>(w.data()) + b;
            x->d = quant::f32_to_f16(0.5f);
            std::memset(x->qs, b % 2 ? 0x80 : 0x7f, quant::kQK);  // -128 and 127
        }
    }
    for (int64_t b = 0; type != GgmlType::Q8_0 && b < n / quant::kQKK * quant::kPanelRows; ++b) {
        if (type == GgmlType::Q4_K) {
            auto* x = reinterpret_cast<quant::BlockQ4_K*>(w.data()) + b;
            x->d = quant::f32_to_f16(0.5f);
            x->dmin = quant::f32_to_f16(0.25f);
        } else {
            auto* x = reinterpret_cast<quant::BlockQ6_K*>(w.data()) + b;
            x->d = quant::f32_to_f16(0.5f);
            for (int j = 0; j < 16; ++j) x->scales[j] = j % 2 ? -128 : 127;
        }
    }
    for (int c = 0; c < quant::kPanelCols && act == GgmlType::Q8_0; ++c) {
        auto* y = reinterpret_cast<quant::BlockQ8_0*>(a.data() + c * a_bytes);
        for (int64_t b = 0; b < n / quant::kQK; ++b) {
            y[b].d = quant::f32_to_f16(1.0f);
            std::memset(y[b].qs, c % 2 ? 0x7f : 0x80, quant::kQK);
        }
    }
    for (int c = 0; c < quant::kPanelCols && act == GgmlType::Q8_K; ++c) {
        auto* y = reinterpret_cast<quant::BlockQ8_K*>(a.data() + c * a_bytes);
        for (int64_t b = 0; b < n / quant::kQKK; ++b) {
            y[b].d = 1.0f;
            const int8_t v = c % 2 ? 127 : -128;
            std::memset(y[b].qs, static_cast<uint8_t>(v), quant::kQKK);
            for (int j = 0; j < 16; ++j) y[b].bsums[j] = static_cast<int16_t>(16 * v);
        }
    }
    check(type, n, w.data(), w_bytes, a, a_bytes);
}

INSTANTIATE_TEST_SUITE_P(Types, PanelTest, ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

}  // namespace
