// The 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: dequantization (ggml's arithmetic,
// bit-exact), quantization (ggml's reference rounding without an imatrix, its weighted scale search
// with one) and the scalar dot products with Q8_0 activations.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "block_common.h"
#include "dot_kernels.h"
#include "format_ops.h"
#include "quant/float16.h"

namespace quant {
namespace {

// The nibble layout shared by all four: element j in the low half of byte j, j + 16 in the high half.
void pack_nibbles(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + kQK / 2] & 0xF) << 4));
}

// Bit 4 of each 5-bit level, element j in bit j.
void pack_high_bits(const uint8_t* L, uint8_t* qh) {
    uint32_t bits = 0;
    for (int j = 0; j < kQK; ++j) bits |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
    std::memcpy(qh, &bits, 4);
}

uint32_t load_high_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    return bits;
}

// ggml's importance weights for the 32-blocks: the imatrix scaled by the element's magnitude over a
// floor of the row's mean square, so small values still count.
float row_sigma2(const float* x, int64_t n) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / n;
}

void block_weights(const float* xb, const float* imatrix, float sigma2, float* weight) {
    for (int j = 0; j < kQK; ++j) weight[j] = imatrix[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

// The value with the largest magnitude, sign kept (first one on ties).
float signed_absmax(const float* xb) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
        if (amax < std::fabs(xb[j])) {
            amax = std::fabs(xb[j]);
            max = xb[j];
        }
    }
    return max;
}

// --- Q4_0 ---------------------------------------------------------------------------------------

void q4_0_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < kQK / 2; ++j) {
            dst[j] = ((b[i].qs[j] & 0xF) - 8) * d;
            dst[j + kQK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void q4_0_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ4_0*>(dst);
    const float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    uint8_t L[kQK];
    for (int64_t i = 0; i < n / kQK; ++i) {
        const float* xb = x + i * kQK;
        if (imatrix) {
            float weight[kQK];
            block_weights(xb, imatrix + i * kQK, sigma2, weight);
            const float d = make_qx_quants(kQK, 8, xb, reinterpret_cast<int8_t*>(L), weight);
            y[i].d = f32_to_f16(d);
        } else {
            // Scale so the largest magnitude maps to level -8, the one the asymmetric range has spare.
            const float d = signed_absmax(xb) / -8;
            const float id = d ? 1.0f / d : 0.0f;
            y[i].d = f32_to_f16(d);
            for (int j = 0; j < kQK; ++j) L[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(xb[j] * id + 8.5f)));
        }
        pack_nibbles(L, y[i].qs);
    }
}

float q4_0_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_0*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t i = 0; i < n / kQK; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + kQK / 2];
        }
        sum += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
    }
    return sum;
}

// --- Q4_1 ---------------------------------------------------------------------------------------

void q4_1_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ4_1*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
        const float d = f16_to_f32(b[i].d);
        const float m = f16_to_f32(b[i].m);
        for (int j = 0; j < kQK / 2; ++j) {
            dst[j] = (b[i].qs[j] & 0xF) * d + m;
            dst[j + kQK / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

// Q4_1 and Q5_1 share their quantizer: min/max range without importance weights, a weighted
// scale-and-min search with them.
void quantize_with_min(const float* xb, const float* weight, int nmax, uint16_t& d_out, uint16_t& m_out,
                       uint8_t* L) {
    if (weight) {
        uint8_t Laux[kQK];
        float min;
        const float d = make_qkx3_quants(kQK, nmax, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
        d_out = f32_to_f16(d);
        m_out = f32_to_f16(-min);
        return;
    }
    float min = xb[0], max = xb[0];
    for (int j = 1; j < kQK; ++j) {
        min = std::min(min, xb[j]);
        max = std::max(max, xb[j]);
    }
    const float d = (max - min) / nmax;
    const float id = d ? 1.0f / d : 0.0f;
    d_out = f32_to_f16(d);
    m_out = f32_to_f16(min);
    for (int j = 0; j < kQK; ++j) {
        L[j] = static_cast<uint8_t>(std::min(nmax, static_cast<int>((xb[j] - min) * id + 0.5f)));
    }
}

// Runs quantize_with_min over a row, with the importance weights of each block when there is an imatrix.
template <typename Block, typename Pack>
void quantize_row_with_min(const float* x, Block* y, int64_t n, const float* imatrix, int nmax, Pack pack) {
    const float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    uint8_t L[kQK];
    float weight[kQK];
    for (int64_t i = 0; i < n / kQK; ++i) {
        const float* xb = x + i * kQK;
        if (imatrix) block_weights(xb, imatrix + i * kQK, sigma2, weight);
        quantize_with_min(xb, imatrix ? weight : nullptr, nmax, y[i].d, y[i].m, L);
        pack(L, y[i]);
    }
}

void q4_1_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    quantize_row_with_min(x, static_cast<BlockQ4_1*>(dst), n, imatrix, 15,
                          [](const uint8_t* L, BlockQ4_1& b) { pack_nibbles(L, b.qs); });
}

// Sum of the activation quants: what a weight minimum multiplies.
int q8_sum(const BlockQ8_0& y) {
    int s = 0;
    for (int j = 0; j < kQK; ++j) s += y.qs[j];
    return s;
}

float q4_1_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_1*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t i = 0; i < n / kQK; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + kQK / 2];
        }
        const float dy = f16_to_f32(y[i].d);
        sum += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * dy) +
               static_cast<float>(q8_sum(y[i])) * (f16_to_f32(x[i].m) * dy);
    }
    return sum;
}

// --- Q5_0 ---------------------------------------------------------------------------------------

void q5_0_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ5_0*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
        const float d = f16_to_f32(b[i].d);
        const uint32_t qh = load_high_bits(b[i].qh);
        for (int j = 0; j < kQK / 2; ++j) {
            const int lo = (b[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            const int hi = (b[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            dst[j] = (lo - 16) * d;
            dst[j + kQK / 2] = (hi - 16) * d;
        }
    }
}

void q5_0_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ5_0*>(dst);
    const float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    uint8_t L[kQK];
    for (int64_t i = 0; i < n / kQK; ++i) {
        const float* xb = x + i * kQK;
        if (imatrix) {
            float weight[kQK];
            block_weights(xb, imatrix + i * kQK, sigma2, weight);
            y[i].d = f32_to_f16(make_qx_quants(kQK, 16, xb, reinterpret_cast<int8_t*>(L), weight));
        } else {
            const float d = signed_absmax(xb) / -16;
            const float id = d ? 1.0f / d : 0.0f;
            y[i].d = f32_to_f16(d);
            for (int j = 0; j < kQK; ++j) {
                L[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(xb[j] * id + 16.5f)));
            }
        }
        pack_nibbles(L, y[i].qs);
        pack_high_bits(L, y[i].qh);
    }
}

float q5_0_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_0*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t i = 0; i < n / kQK; ++i) {
        const uint32_t qh = load_high_bits(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const int lo = (x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            const int hi = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            sumi += (lo - 16) * y[i].qs[j] + (hi - 16) * y[i].qs[j + kQK / 2];
        }
        sum += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
    }
    return sum;
}

// --- Q5_1 ---------------------------------------------------------------------------------------

void q5_1_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ5_1*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
        const float d = f16_to_f32(b[i].d);
        const float m = f16_to_f32(b[i].m);
        const uint32_t qh = load_high_bits(b[i].qh);
        for (int j = 0; j < kQK / 2; ++j) {
            const int lo = (b[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            const int hi = (b[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            dst[j] = lo * d + m;
            dst[j + kQK / 2] = hi * d + m;
        }
    }
}

void q5_1_quantize(const float* x, void* dst, int64_t n, const float* imatrix) {
    quantize_row_with_min(x, static_cast<BlockQ5_1*>(dst), n, imatrix, 31, [](const uint8_t* L, BlockQ5_1& b) {
        pack_nibbles(L, b.qs);
        pack_high_bits(L, b.qh);
    });
}

float q5_1_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_1*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t i = 0; i < n / kQK; ++i) {
        const uint32_t qh = load_high_bits(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const int lo = (x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            const int hi = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            sumi += lo * y[i].qs[j] + hi * y[i].qs[j + kQK / 2];
        }
        const float dy = f16_to_f32(y[i].d);
        sum += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * dy) +
               static_cast<float>(q8_sum(y[i])) * (f16_to_f32(x[i].m) * dy);
    }
    return sum;
}

// --- Q8_0 ---------------------------------------------------------------------------------------

void q8_0_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < kQK; ++j) dst[j] = b[i].qs[j] * d;
    }
}

// ggml ignores the imatrix for Q8_0: with 255 levels the plain absmax scale is already near optimal.
void q8_0_quantize(const float* x, void* dst, int64_t n, const float*) {
    auto* y = static_cast<BlockQ8_0*>(dst);
    for (int64_t i = 0; i < n / kQK; ++i) {
        const float* xb = x + i * kQK;
        float amax = 0;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_f16(d);
        for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(round_half_away(xb[j] * id));
    }
}

float q8_0_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ8_0*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0;
    for (int64_t i = 0; i < n / kQK; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
        sum += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
    }
    return sum;
}

}  // namespace

const FormatOps kQ4_0Ops{GgmlType::Q4_0, q4_0_dequantize, q4_0_quantize, false, GgmlType::Q8_0,
                         q4_0_dot, dot_q4_0_q8_0_avx2, dot_q4_0_q8_0_avx512};
const FormatOps kQ4_1Ops{GgmlType::Q4_1, q4_1_dequantize, q4_1_quantize, false, GgmlType::Q8_0,
                         q4_1_dot, dot_q4_1_q8_0_avx2, dot_q4_1_q8_0_avx512};
const FormatOps kQ5_0Ops{GgmlType::Q5_0, q5_0_dequantize, q5_0_quantize, false, GgmlType::Q8_0,
                         q5_0_dot, dot_q5_0_q8_0_avx2, dot_q5_0_q8_0_avx512};
const FormatOps kQ5_1Ops{GgmlType::Q5_1, q5_1_dequantize, q5_1_quantize, false, GgmlType::Q8_0,
                         q5_1_dot, dot_q5_1_q8_0_avx2, dot_q5_1_q8_0_avx512};
const FormatOps kQ8_0Ops{GgmlType::Q8_0, q8_0_dequantize, q8_0_quantize, false, GgmlType::Q8_0,
                         q8_0_dot, dot_q8_0_q8_0_avx2, dot_q8_0_q8_0_avx512};

}  // namespace quant
