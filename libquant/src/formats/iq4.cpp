// IQ4_NL (32-blocks with an fp16 scale) and IQ4_XS (256-blocks: fp16 scale times a 6-bit scale per 32):
// four-bit indices into a fixed table of 16 non-linear levels.
//
// Quantization follows the approach of ggml's quantizer (scan of scales that map the block's extreme to
// an end of the level table, each refined by weighted least squares, weights sqrt(sigma^2 + x^2) times
// the importance, or x^2 without it) and then picks among the candidates by the error that matters: the
// importance-weighted (or plain) squared error of the values as they will be dequantized, i.e. with the
// fp16-rounded scales and integer block scales. That last step only ever keeps a candidate that beats
// the one ggml would write, so the result is never worse than ggml's and usually a bit better.
#include <algorithm>
#include <cmath>

#include "format_ops.h"
#include "iq_blocks.h"
#include "iq_dot.h"
#include "quant/float16.h"

namespace quant {
namespace {

constexpr int kScaleSteps = 7;          // candidate scales on each side of a table end

// Index of the level nearest to v (v already divided by the scale).
int nearest_level(float v) {
    if (v <= kValuesIQ4NL[0]) return 0;
    if (v >= kValuesIQ4NL[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < kValuesIQ4NL[mid]) hi = mid; else lo = mid;
    }
    return v - kValuesIQ4NL[lo] < kValuesIQ4NL[hi] - v ? lo : hi;
}

// Quantizes n values with the scale d (as dequantization will see it) and returns the weighted squared
// error; L receives the level indices. A zero scale reproduces zeros.
float quantize_with_scale(const float* x, const float* mw, int n, float d, uint8_t* L) {
    float err = 0;
    const float id = d != 0 ? 1 / d : 0;
    for (int j = 0; j < n; ++j) {
        L[j] = static_cast<uint8_t>(nearest_level(id * x[j]));
        const float e = x[j] - d * kValuesIQ4NL[L[j]];
        err += mw[j] * e * e;
    }
    return err;
}

struct ScalePick {
    float by_search = 0;  // best least-squares scale under the search weights
    float by_metric = 0;  // best under the metric weights
};

// Scale candidates for one block: the block's extreme value mapped to either end of the level table
// (and a few steps inside), each followed by the least-squares scale for the resulting indices.
ScalePick fit_block(const float* x, const float* sw, const float* mw, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; ++j) {
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    ScalePick pick;
    if (amax < kGroupMaxEps) return pick;
    // Where the extreme value lands: around either end of the table, and ggml's first guess (127).
    int targets[4 * kScaleSteps + 3];
    int nt = 0;
    for (int step = -kScaleSteps; step <= kScaleSteps; ++step) {
        targets[nt++] = kValuesIQ4NL[0] + step;
        targets[nt++] = kValuesIQ4NL[15] + step;
    }
    targets[nt++] = 127;
    float best_s = 0, best_m = 0;
    for (int t = 0; t < nt; ++t) {
        const float id = static_cast<float>(targets[t]) / max;
        float sqx_s = 0, sq2_s = 0, sqx_m = 0, sq2_m = 0;
        for (int j = 0; j < n; ++j) {
            const float q = kValuesIQ4NL[nearest_level(id * x[j])];
            sqx_s += sw[j] * q * x[j];
            sq2_s += sw[j] * q * q;
            sqx_m += mw[j] * q * x[j];
            sq2_m += mw[j] * q * q;
        }
        // sqx^2 / sq2 is the error reduction of the least-squares scale sqx / sq2.
        if (sq2_s > 0 && sqx_s * sqx_s > best_s * sq2_s) {
            pick.by_search = sqx_s / sq2_s;
            best_s = pick.by_search * sqx_s;
        }
        if (sq2_m > 0 && sqx_m * sqx_m > best_m * sq2_m) {
            pick.by_metric = sqx_m / sq2_m;
            best_m = pick.by_metric * sqx_m;
        }
    }
    if (pick.by_search == 0) pick.by_search = pick.by_metric;  // search weights all zero
    if (pick.by_metric == 0) pick.by_metric = pick.by_search;
    return pick;
}

// Per-element weights: the search weights steer the scale scan as ggml's do; the metric weights are
// the importance alone (or 1), the measure the result is judged by.
void make_weights(const float* x, const float* imatrix, int n, float sigma2, float* sw, float* mw) {
    for (int j = 0; j < n; ++j) {
        sw[j] = imatrix ? imatrix[j] * std::sqrt(sigma2 + x[j] * x[j]) : x[j] * x[j];
        mw[j] = imatrix ? imatrix[j] : 1.0f;
    }
}

void pack_nibbles(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

void iq4_nl_quantize_block(const float* x, const float* imatrix, BlockIQ4NL& y) {
    float sigma2 = 0;
    for (int j = 0; j < kQK; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / kQK;
    float sw[kQK], mw[kQK];
    make_weights(x, imatrix, kQK, sigma2, sw, mw);
    const ScalePick pick = fit_block(x, sw, mw, kQK);

    uint8_t L[kQK], Ltry[kQK];
    uint16_t best_d = f32_to_f16(pick.by_search);
    float best_err = quantize_with_scale(x, mw, kQK, f16_to_f32(best_d), L);
    auto consider = [&](float d) {
        const uint16_t h = f32_to_f16(d);
        const float err = quantize_with_scale(x, mw, kQK, f16_to_f32(h), Ltry);
        if (err < best_err) {
            best_err = err;
            best_d = h;
            std::copy(Ltry, Ltry + kQK, L);
        }
    };
    consider(pick.by_metric);
    // Alternate optimal scale for the indices and optimal indices for the scale (never increases error).
    for (int iter = 0; iter < 2; ++iter) {
        float sqx = 0, sq2 = 0;
        for (int j = 0; j < kQK; ++j) {
            const float q = kValuesIQ4NL[L[j]];
            sqx += mw[j] * q * x[j];
            sq2 += mw[j] * q * q;
        }
        if (sq2 <= 0) break;
        consider(sqx / sq2);
    }
    y.d = best_d;
    pack_nibbles(L, y.qs);
}

void iq4_nl_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ4NL*>(dst);
    for (int64_t b = 0; b < n / kQK; ++b) {
        iq4_nl_quantize_block(src + b * kQK, imatrix ? imatrix + b * kQK : nullptr, y[b]);
    }
}

void iq4_nl_dequantize(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockIQ4NL*>(src);
    for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
        const float d = f16_to_f32(x[b].d);
        for (int j = 0; j < 16; ++j) {
            dst[j] = d * kValuesIQ4NL[x[b].qs[j] & 0xf];
            dst[j + 16] = d * kValuesIQ4NL[x[b].qs[j] >> 4];
        }
    }
}

int iq4_xs_block_scale(const BlockIQ4XS& b, int ib) {
    const int lo = (b.scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf;
    const int hi = (b.scales_h >> 2 * ib) & 3;
    return (lo | hi << 4) - 32;
}

void iq4_xs_quantize_block(const float* x, const float* imatrix, BlockIQ4XS& y) {
    constexpr int nb = kQKK / kQK;
    float sigma2 = 0;
    for (int j = 0; j < kQKK; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / kQKK;
    float sw[kQKK], mw[kQKK];
    make_weights(x, imatrix, kQKK, sigma2, sw, mw);

    ScalePick picks[nb];
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < nb; ++ib) {
        picks[ib] = fit_block(x + kQK * ib, sw + kQK * ib, mw + kQK * ib, kQK);
        if (std::fabs(picks[ib].by_search) > amax_scale) {
            amax_scale = std::fabs(picks[ib].by_search);
            max_scale = picks[ib].by_search;
        }
    }

    // Blocks that stay all zero (no usable scale, or one below fp16's range) keep index 0 and scale 0.
    uint8_t L[kQKK] = {}, Ltry[kQK];
    int ls[nb] = {};
    uint16_t dh = 0;
    if (amax_scale > 0) {
        // Super-scale candidates: ggml's (largest block scale at -32) and a few around it, plus the
        // opposite polarity (largest at +31); each judged with every block scale rounded to 6 bits.
        float cand[7];
        int nc = 0;
        for (const float f : {1.0f, 0.97f, 0.985f, 1.015f, 1.03f}) cand[nc++] = -max_scale / 32 * f;
        cand[nc++] = max_scale / 31;
        float best_err = INFINITY;
        for (int c = 0; c < nc; ++c) {
            const uint16_t h = f32_to_f16(cand[c]);
            const float d = f16_to_f32(h);
            if (d == 0) continue;
            float err = 0;
            for (int ib = 0; ib < nb; ++ib) {
                const int l = nearest_int(std::clamp(picks[ib].by_search / d, -32.f, 31.f));
                err += quantize_with_scale(x + kQK * ib, mw + kQK * ib, kQK, d * l, Ltry);
            }
            if (err < best_err) {
                best_err = err;
                dh = h;
            }
        }
        // With the super-scale fixed, each block keeps the best of the 6-bit scales near its two picks.
        const float d = f16_to_f32(dh);
        for (int ib = 0; ib < nb && d != 0; ++ib) {
            const float* xb = x + kQK * ib;
            const float* mb = mw + kQK * ib;
            float best = INFINITY;
            for (const float s : {picks[ib].by_search, picks[ib].by_metric}) {
                const int l0 = nearest_int(std::clamp(s / d, -32.f, 31.f));
                for (int l = l0 - 1; l <= l0 + 1; ++l) {
                    if (l < -32 || l > 31) continue;
                    const float err = quantize_with_scale(xb, mb, kQK, d * l, Ltry);
                    if (err < best) {
                        best = err;
                        ls[ib] = l;
                        std::copy(Ltry, Ltry + kQK, L + kQK * ib);
                    }
                }
            }
        }
    }

    y.d = dh;
    y.scales_h = 0;
    std::fill(y.scales_l, y.scales_l + kQKK / 64, uint8_t{0});
    for (int ib = 0; ib < nb; ++ib) {
        const int l = ls[ib] + 32;
        y.scales_l[ib / 2] |= static_cast<uint8_t>((l & 0xf) << 4 * (ib % 2));
        y.scales_h |= static_cast<uint16_t>((l >> 4) << 2 * ib);
        pack_nibbles(L + kQK * ib, y.qs + 16 * ib);
    }
}

void iq4_xs_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ4XS*>(dst);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        iq4_xs_quantize_block(src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, y[b]);
    }
}

void iq4_xs_dequantize(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockIQ4XS*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        const uint8_t* qs = x[b].qs;
        for (int ib = 0; ib < kQKK / kQK; ++ib, dst += kQK, qs += 16) {
            const float dl = d * static_cast<float>(iq4_xs_block_scale(x[b], ib));
            for (int j = 0; j < 16; ++j) {
                dst[j] = dl * kValuesIQ4NL[qs[j] & 0xf];
                dst[j + 16] = dl * kValuesIQ4NL[qs[j] >> 4];
            }
        }
    }
}

int32_t nl_block_dot(const uint8_t* qs, const int8_t* q8) {
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) {
        s += kValuesIQ4NL[qs[j] & 0xf] * q8[j] + kValuesIQ4NL[qs[j] >> 4] * q8[j + 16];
    }
    return s;
}

}  // namespace

float dot_iq4_nl_q8_0_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4NL*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        sum += f16_to_f32(x[b].d) * f16_to_f32(y[b].d) * static_cast<float>(nl_block_dot(x[b].qs, y[b].qs));
    }
    return sum;
}

float dot_iq4_xs_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4XS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        int32_t sumi = 0;
        for (int ib = 0; ib < kQKK / kQK; ++ib) {
            sumi += iq4_xs_block_scale(x[b], ib) * nl_block_dot(x[b].qs + 16 * ib, y[b].qs + kQK * ib);
        }
        sum += f16_to_f32(x[b].d) * y[b].d * static_cast<float>(sumi);
    }
    return sum;
}

const FormatOps kIQ4_NLOps{GgmlType::IQ4_NL,          iq4_nl_dequantize,     iq4_nl_quantize,
                           false,                     GgmlType::Q8_0,        dot_iq4_nl_q8_0_scalar,
                           dot_iq4_nl_q8_0_avx2,      dot_iq4_nl_q8_0_avx512};
const FormatOps kIQ4_XSOps{GgmlType::IQ4_XS,          iq4_xs_dequantize,     iq4_xs_quantize,
                           false,                     GgmlType::Q8_K,        dot_iq4_xs_q8_k_scalar,
                           dot_iq4_xs_q8_k_avx2,      dot_iq4_xs_q8_k_avx512};

}  // namespace quant
