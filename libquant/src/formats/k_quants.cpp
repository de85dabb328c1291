// The K-quants Q2_K ... Q6_K: 256-element super-blocks of 16 or 32-element sub-blocks whose scales are
// themselves quantized. Dequantization is ggml's arithmetic (bit-exact), quantization is ggml's
// algorithm (its reference search without an imatrix, its weighted one with), and the scalar dot
// products against Q8_K activations are the reference the SIMD kernels are tested against.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "block_common.h"
#include "dot_kernels.h"
#include "format_ops.h"
#include "quant/float16.h"

namespace quant {
namespace {

// Each format first unpacks a super-block to its integer levels (as the formula in block_common.h
// uses them); dequantization and the scalar dots share that.

void levels_q2_k(const BlockQ2_K& b, int8_t* L) {
    for (int c = 0; c < 2; ++c) {
        for (int s = 0; s < 4; ++s) {
            for (int l = 0; l < 32; ++l) L[128 * c + 32 * s + l] = static_cast<int8_t>((b.qs[32 * c + l] >> (2 * s)) & 3);
        }
    }
}

void levels_q3_k(const BlockQ3_K& b, int8_t* L) {
    for (int c = 0; c < 2; ++c) {
        for (int s = 0; s < 4; ++s) {
            const int bit = 4 * c + s;  // hmask bit of this run of 32
            for (int l = 0; l < 32; ++l) {
                const int low = (b.qs[32 * c + l] >> (2 * s)) & 3;
                L[128 * c + 32 * s + l] = static_cast<int8_t>(low - 4 + 4 * ((b.hmask[l] >> bit) & 1));
            }
        }
    }
}

void levels_q4_k(const BlockQ4_K& b, int8_t* L) {
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) {
            L[64 * c + l] = static_cast<int8_t>(b.qs[32 * c + l] & 0xF);
            L[64 * c + 32 + l] = static_cast<int8_t>(b.qs[32 * c + l] >> 4);
        }
    }
}

void levels_q5_k(const BlockQ5_K& b, int8_t* L) {
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) {
            L[64 * c + l] = static_cast<int8_t>((b.qs[32 * c + l] & 0xF) | (((b.qh[l] >> (2 * c)) & 1) << 4));
            L[64 * c + 32 + l] = static_cast<int8_t>((b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4));
        }
    }
}

// Per half of 128: quarters 0 and 2 share the low and high nibbles of ql[0..31], quarters 1 and 3
// those of ql[32..63]; qh holds the top two bits of all four.
void levels_q6_k(const BlockQ6_K& b, int8_t* L) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = b.ql + 64 * half;
        const uint8_t* qh = b.qh + 32 * half;
        int8_t* out = L + 128 * half;
        for (int l = 0; l < 32; ++l) {
            out[l] = static_cast<int8_t>(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
            out[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            out[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            out[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

// The inverse packings, from levels as stored (biased to be non-negative).

void pack_q3_k_levels(uint8_t* L, BlockQ3_K& b) {
    std::memset(b.hmask, 0, sizeof b.hmask);
    for (int e = 0; e < kQKK; ++e) {
        if (L[e] > 3) {
            b.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
            L[e] -= 4;
        }
    }
    pack_2bit(L, b.qs);
}

void pack_q4_k_levels(const uint8_t* L, BlockQ4_K& b) {
    for (int j = 0; j < kQKK; j += 64) {
        for (int l = 0; l < 32; ++l) b.qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
}

void pack_q5_k_levels(const uint8_t* L, BlockQ5_K& b) {
    std::memset(b.qh, 0, sizeof b.qh);
    for (int e = 0; e < kQKK; ++e) {
        if (L[e] > 15) b.qh[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
    }
    for (int j = 0; j < kQKK; j += 64) {
        for (int l = 0; l < 32; ++l) {
            b.qs[j / 2 + l] = static_cast<uint8_t>((L[j + l] & 0xF) | ((L[j + l + 32] & 0xF) << 4));
        }
    }
}

void pack_q6_k_levels(const uint8_t* L, BlockQ6_K& b) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* Lh = L + 128 * half;
        for (int l = 0; l < 32; ++l) {
            b.ql[64 * half + l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
            b.ql[64 * half + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
            b.qh[32 * half + l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                                       ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
        }
    }
}

// Sum of squares of a super-block, the floor ggml puts under each element's importance.
float sum_squares(const float* x) {
    float s = 0;
    for (int j = 0; j < kQKK; ++j) s += x[j] * x[j];
    return s;
}

// --- Q2_K ---------------------------------------------------------------------------------------

void q2_k_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ2_K*>(src);
    int8_t L[kQKK];
    for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
        levels_q2_k(b[i], L);
        const float d = f16_to_f32(b[i].d), min = f16_to_f32(b[i].dmin);
        for (int j = 0; j < 16; ++j) {
            const float dl = d * (b[i].scales[j] & 0xF), ml = min * (b[i].scales[j] >> 4);
            for (int l = 0; l < 16; ++l) dst[16 * j + l] = dl * L[16 * j + l] - ml;
        }
    }
}

// Final levels for fixed sub-block scales and mins: x ~ d * L - m, L in 0..nmax. Sub-blocks whose
// scale rounded to zero keep the levels their search chose (ggml does the same).
void requantize_with_min(const float* x, int n, float d, float m, int nmax, uint8_t* L) {
    if (!d) return;
    for (int l = 0; l < n; ++l) L[l] = static_cast<uint8_t>(std::clamp(nearest_int((x[l] + m) / d), 0, nmax));
}

void q2_k_quantize_block(const float* x, BlockQ2_K& y, const float* imatrix) {
    uint8_t L[kQKK], Laux[16], Ls[16], Lm[16];
    float scales[16], mins[16], weight[16];
    if (imatrix) {
        float sw[16];
        const float sigma2 = sum_squares(x) / kQKK;
        for (int j = 0; j < 16; ++j) {
            sw[j] = 0;
            for (int l = 0; l < 16; ++l) {
                weight[l] = imatrix[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
                sw[j] += weight[l];
            }
            scales[j] = make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
        }
        // The 4-bit sub-block scales and mins get their own weighted fits.
        y.d = f32_to_f16(make_qp_quants(16, 15, scales, Ls, sw));
        y.dmin = f32_to_f16(make_qp_quants(16, 15, mins, Lm, sw));
    } else {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) weight[l] = std::fabs(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        const float iscale = max_scale > 0 ? 15.f / max_scale : 0.f;
        const float imin = max_min > 0 ? 15.f / max_min : 0.f;
        for (int j = 0; j < 16; ++j) {
            Ls[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
            Lm[j] = static_cast<uint8_t>(nearest_int(imin * mins[j]));
        }
        y.d = f32_to_f16(max_scale > 0 ? max_scale / 15.f : 0.f);
        y.dmin = f32_to_f16(max_min > 0 ? max_min / 15.f : 0.f);
    }
    const float d = f16_to_f32(y.d), dmin = f16_to_f32(y.dmin);
    for (int j = 0; j < 16; ++j) {
        y.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
        requantize_with_min(x + 16 * j, 16, d * (y.scales[j] & 0xF), dmin * (y.scales[j] >> 4), 3, L + 16 * j);
    }
    pack_2bit(L, y.qs);
}

void q2_k_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ2_K*>(dst);
    for (int64_t i = 0; i < n / kQKK; ++i) q2_k_quantize_block(x + i * kQKK, y[i], imatrix ? imatrix + i * kQKK : nullptr);
}

float q2_k_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ2_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    int8_t L[kQKK];
    float sum = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        levels_q2_k(x[i], L);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += L[16 * j + l] * y[i].qs[16 * j + l];
            sumi += (x[i].scales[j] & 0xF) * s;
            summ += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        sum += y[i].d * (f16_to_f32(x[i].d) * sumi - f16_to_f32(x[i].dmin) * summ);
    }
    return sum;
}

// --- Q3_K ---------------------------------------------------------------------------------------

void q3_k_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ3_K*>(src);
    int8_t L[kQKK], scales[16];
    for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
        levels_q3_k(b[i], L);
        unpack_q3_k_scales(b[i].scales, scales);
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < 16; ++j) {
            const float dl = d * scales[j];
            for (int l = 0; l < 16; ++l) dst[16 * j + l] = dl * L[16 * j + l];
        }
    }
}

void q3_k_quantize_block(const float* x, BlockQ3_K& y, const float* imatrix) {
    int8_t L[kQKK];
    float scales[16];
    uint8_t biased[16];
    if (imatrix) {
        float weight[16], sw[16];
        const float sigma2 = 2 * sum_squares(x) / kQKK;
        for (int j = 0; j < 16; ++j) {
            float sumw = 0;
            for (int l = 0; l < 16; ++l) {
                weight[l] = imatrix[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
            }
            for (int l = 0; l < 16; ++l) sumw += weight[l];
            sw[j] = sumw;
            scales[j] = make_qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
        }
        int8_t Ls[16];
        y.d = f32_to_f16(make_qx_quants(16, 32, scales, Ls, sw));
        for (int j = 0; j < 16; ++j) biased[j] = static_cast<uint8_t>(Ls[j]);
    } else {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > amax) {
                amax = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                biased[j] = static_cast<uint8_t>(std::clamp<int>(static_cast<int8_t>(nearest_int(iscale * scales[j])), -32, 31) + 32);
            }
            y.d = f32_to_f16(1 / iscale);
        } else {
            std::fill(biased, biased + 16, uint8_t{0});
            y.d = f32_to_f16(0.f);
        }
    }
    pack_q3_k_scales(biased, y.scales);
    int8_t sc[16];
    unpack_q3_k_scales(y.scales, sc);
    for (int j = 0; j < 16; ++j) {
        const float d = f16_to_f32(y.d) * sc[j];
        if (!d) continue;
        for (int l = 0; l < 16; ++l) {
            L[16 * j + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + l] / d), -4, 3) + 4);
        }
    }
    pack_q3_k_levels(reinterpret_cast<uint8_t*>(L), y);
}

void q3_k_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ3_K*>(dst);
    for (int64_t i = 0; i < n / kQKK; ++i) q3_k_quantize_block(x + i * kQKK, y[i], imatrix ? imatrix + i * kQKK : nullptr);
}

float q3_k_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ3_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    int8_t L[kQKK], scales[16];
    float sum = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        levels_q3_k(x[i], L);
        unpack_q3_k_scales(x[i].scales, scales);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += L[16 * j + l] * y[i].qs[16 * j + l];
            sumi += scales[j] * s;
        }
        sum += f16_to_f32(x[i].d) * y[i].d * sumi;
    }
    return sum;
}

// --- Q4_K and Q5_K ------------------------------------------------------------------------------

// Both fit 8 sub-blocks of 32 with a scale and a minimum each, quantized to 6 bits against the
// super-block's fp16 d and dmin. They differ in nmax and in ggml's search parameters.
struct ScaleMinParams {
    int nmax;
    float rmin;  // of the search without an imatrix
    int nstep;
};

template <typename Block>
void quantize_scale_min_block(const float* x, Block& y, const float* imatrix, const ScaleMinParams& p,
                              uint8_t* L) {
    uint8_t Laux[32], Ls[8], Lm[8];
    float scales[8], mins[8], weights[32];
    if (imatrix) {
        float sw[8];
        const float sigma2 = 2 * sum_squares(x) / kQKK;
        for (int j = 0; j < 8; ++j) {
            for (int l = 0; l < 32; ++l) {
                weights[l] = imatrix[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
            }
            float sumw = 0;
            for (int l = 0; l < 32; ++l) sumw += weights[l];
            sw[j] = sumw;
            scales[j] = make_qkx3_quants(32, p.nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f,
                                         0.05f, 36, false);
        }
        y.d = f32_to_f16(make_qp_quants(8, 63, scales, Ls, sw));
        y.dmin = f32_to_f16(make_qp_quants(8, 63, mins, Lm, sw));
    } else {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            const float av_x = std::sqrt(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, p.nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, p.rmin, 0.1f,
                                         p.nstep, false);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; ++j) {
            // A (rare) negative fit wraps through the byte exactly as in ggml before the clamp.
            Ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
            Lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
        }
        y.d = f32_to_f16(max_scale / 63.f);
        y.dmin = f32_to_f16(max_min / 63.f);
    }
    pack_scale_min_k4(Ls, Lm, y.scales);
    const float d = f16_to_f32(y.d), dmin = f16_to_f32(y.dmin);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, y.scales, sc, m);
        requantize_with_min(x + 32 * j, 32, d * sc, dmin * m, p.nmax, L + 32 * j);
    }
}

template <typename Block>
void dequantize_scale_min(const Block& b, const int8_t* L, float* dst) {
    const float d = f16_to_f32(b.d), min = f16_to_f32(b.dmin);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, b.scales, sc, m);
        const float dl = d * sc, ml = min * m;
        for (int l = 0; l < 32; ++l) dst[32 * j + l] = dl * L[32 * j + l] - ml;
    }
}

template <typename Block>
float dot_scale_min(const Block& x, const int8_t* L, const BlockQ8_K& y) {
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, x.scales, sc, m);
        int s = 0;
        for (int l = 0; l < 32; ++l) s += L[32 * j + l] * y.qs[32 * j + l];
        sumi += sc * s;
        summ += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
    }
    return y.d * (f16_to_f32(x.d) * sumi - f16_to_f32(x.dmin) * summ);
}

constexpr ScaleMinParams kQ4KParams{15, -1.f, 20};
constexpr ScaleMinParams kQ5KParams{31, -0.5f, 15};

void q4_k_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ4_K*>(src);
    int8_t L[kQKK];
    for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
        levels_q4_k(b[i], L);
        dequantize_scale_min(b[i], L, dst);
    }
}

void q4_k_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ4_K*>(dst);
    uint8_t L[kQKK];
    for (int64_t i = 0; i < n / kQKK; ++i) {
        quantize_scale_min_block(x + i * kQKK, y[i], imatrix ? imatrix + i * kQKK : nullptr, kQ4KParams, L);
        pack_q4_k_levels(L, y[i]);
    }
}

float q4_k_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    int8_t L[kQKK];
    float sum = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        levels_q4_k(x[i], L);
        sum += dot_scale_min(x[i], L, y[i]);
    }
    return sum;
}

void q5_k_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ5_K*>(src);
    int8_t L[kQKK];
    for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
        levels_q5_k(b[i], L);
        dequantize_scale_min(b[i], L, dst);
    }
}

void q5_k_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ5_K*>(dst);
    uint8_t L[kQKK];
    for (int64_t i = 0; i < n / kQKK; ++i) {
        quantize_scale_min_block(x + i * kQKK, y[i], imatrix ? imatrix + i * kQKK : nullptr, kQ5KParams, L);
        pack_q5_k_levels(L, y[i]);
    }
}

float q5_k_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    int8_t L[kQKK];
    float sum = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        levels_q5_k(x[i], L);
        sum += dot_scale_min(x[i], L, y[i]);
    }
    return sum;
}

// --- Q6_K ---------------------------------------------------------------------------------------

void q6_k_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ6_K*>(src);
    int8_t L[kQKK];
    for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
        levels_q6_k(b[i], L);
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) dst[16 * j + l] = d * b[i].scales[j] * L[16 * j + l];
        }
    }
}

void q6_k_quantize_block(const float* x, BlockQ6_K& y, const float* imatrix) {
    int8_t L[kQKK];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < 16; ++j) {
        // With 64 levels the raw importance is used as the weight, unlike the coarser formats.
        scales[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j, imatrix ? imatrix + 16 * j : nullptr);
        if (std::fabs(scales[j]) > max_abs_scale) {
            max_abs_scale = std::fabs(scales[j]);
            max_scale = scales[j];
        }
    }
    if (max_abs_scale < kGroupMaxEps) {
        std::memset(&y, 0, sizeof y);
        return;
    }
    const float iscale = -128.f / max_scale;
    y.d = f32_to_f16(1 / iscale);
    for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
    for (int j = 0; j < 16; ++j) {
        const float d = f16_to_f32(y.d) * y.scales[j];
        if (!d) continue;
        for (int l = 0; l < 16; ++l) {
            L[16 * j + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
        }
    }
    pack_q6_k_levels(reinterpret_cast<const uint8_t*>(L), y);
}

void q6_k_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ6_K*>(dst);
    for (int64_t i = 0; i < n / kQKK; ++i) q6_k_quantize_block(x + i * kQKK, y[i], imatrix ? imatrix + i * kQKK : nullptr);
}

float q6_k_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ6_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    int8_t L[kQKK];
    float sum = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        levels_q6_k(x[i], L);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += L[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * s;
        }
        sum += f16_to_f32(x[i].d) * y[i].d * sumi;
    }
    return sum;
}

}  // namespace

const FormatOps kQ2_KOps{GgmlType::Q2_K, q2_k_dequantize, q2_k_quantize, false, GgmlType::Q8_K, q2_k_dot,
                         dot_q2_k_q8_k_avx2, dot_q2_k_q8_k_avx512};
const FormatOps kQ3_KOps{GgmlType::Q3_K, q3_k_dequantize, q3_k_quantize, false, GgmlType::Q8_K, q3_k_dot,
                         dot_q3_k_q8_k_avx2, dot_q3_k_q8_k_avx512};
const FormatOps kQ4_KOps{GgmlType::Q4_K, q4_k_dequantize, q4_k_quantize, false, GgmlType::Q8_K, q4_k_dot,
                         dot_q4_k_q8_k_avx2, dot_q4_k_q8_k_avx512};
const FormatOps kQ5_KOps{GgmlType::Q5_K, q5_k_dequantize, q5_k_quantize, false, GgmlType::Q8_K, q5_k_dot,
                         dot_q5_k_q8_k_avx2, dot_q5_k_q8_k_avx512};
const FormatOps kQ6_KOps{GgmlType::Q6_K, q6_k_dequantize, q6_k_quantize, false, GgmlType::Q8_K, q6_k_dot,
                         dot_q6_k_q8_k_avx2, dot_q6_k_q8_k_avx512};

}  // namespace quant
