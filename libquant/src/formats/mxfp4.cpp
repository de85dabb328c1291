// MXFP4 (OCP microscaling): 32 E2M1 values sharing one E8M0 power-of-two scale.
//
// ggml sets the exponent from the block maximum alone (floor(log2 amax) - 2) and ignores importance
// weights. Here each block tries the exponents around that one and keeps the one with the least
// squared error, weighted by the importance when given. For a fixed scale, rounding every element to
// its nearest level is optimal, so this is the exact optimum over the candidates, ggml's choice among
// them: never worse than ggml, and with an imatrix measurably better.
#include <algorithm>
#include <cmath>

#include "format_ops.h"
#include "iq_blocks.h"
#include "iq_dot.h"
#include "quant/float16.h"

namespace quant {
namespace {

// Index (0..7) of the E2M1 magnitude {0, .5, 1, 1.5, 2, 3, 4, 6} (doubled: 0..12) nearest to v >= 0,
// v being the doubled value |x| / (2 * scale).
int nearest_magnitude(float v) {
    // Midpoints between consecutive doubled magnitudes 0, 1, 2, 3, 4, 6, 8, 12.
    static constexpr float kMid[7] = {0.5f, 1.5f, 2.5f, 3.5f, 5.f, 7.f, 10.f};
    int i = 0;
    while (i < 7 && v > kMid[i]) ++i;
    return i;
}

// Quantizes one block with exponent e; returns the weighted squared error.
float quantize_with_exponent(const float* x, const float* w, uint8_t e, uint8_t* L) {
    const float d = e8m0_to_f32_half(e);
    const float id = 1 / d;
    float err = 0;
    for (int j = 0; j < kQK; ++j) {
        const int m = nearest_magnitude(std::fabs(x[j]) * id);
        L[j] = static_cast<uint8_t>(x[j] < 0 && m ? m | 8 : m);
        const float diff = x[j] - d * kValuesMXFP4[L[j]];
        err += (w ? w[j] : 1.0f) * diff * diff;
    }
    return err;
}

void mxfp4_quantize_block(const float* x, const float* w, BlockMXFP4& y) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    uint8_t L[kQK] = {};
    uint8_t e_best = 0;
    if (amax > 0) {
        // ggml's exponent puts amax in [8, 16) doubled units, i.e. at or past the largest level (12).
        const int e0 = static_cast<int>(std::floor(std::log2(amax))) - 2 + 127;
        uint8_t Ltry[kQK];
        float best = INFINITY;
        for (int e = e0 - 2; e <= e0 + 2; ++e) {
            if (e < 0 || e > 254) continue;  // 255 is E8M0's NaN
            const float err = quantize_with_exponent(x, w, static_cast<uint8_t>(e), Ltry);
            if (err < best) {
                best = err;
                e_best = static_cast<uint8_t>(e);
                std::copy(Ltry, Ltry + kQK, L);
            }
        }
    }
    y.e = e_best;
    for (int j = 0; j < 16; ++j) y.qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

void mxfp4_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockMXFP4*>(dst);
    for (int64_t b = 0; b < n / kQK; ++b) {
        mxfp4_quantize_block(src + b * kQK, imatrix ? imatrix + b * kQK : nullptr, y[b]);
    }
}

void mxfp4_dequantize(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockMXFP4*>(src);
    for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
        const float d = e8m0_to_f32_half(x[b].e);
        for (int j = 0; j < 16; ++j) {
            dst[j] = kValuesMXFP4[x[b].qs[j] & 0xf] * d;
            dst[j + 16] = kValuesMXFP4[x[b].qs[j] >> 4] * d;
        }
    }
}

}  // namespace

float dot_mxfp4_q8_0_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockMXFP4*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += kValuesMXFP4[x[b].qs[j] & 0xf] * y[b].qs[j] + kValuesMXFP4[x[b].qs[j] >> 4] * y[b].qs[j + 16];
        }
        sum += e8m0_to_f32_half(x[b].e) * f16_to_f32(y[b].d) * static_cast<float>(sumi);
    }
    return sum;
}

const FormatOps kMXFP4Ops{GgmlType::MXFP4,        mxfp4_dequantize, mxfp4_quantize,        false,
                          GgmlType::Q8_0,         dot_mxfp4_q8_0_scalar, dot_mxfp4_q8_0_avx2,
                          dot_mxfp4_q8_0_avx512};

}  // namespace quant
