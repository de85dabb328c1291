// IQ3_XXS and IQ3_S: groups of 4 magnitudes on a grid of 256 (coordinates 4, 12, ..., 52, 62) or 512
// points (odd 1..15), signs per 8 (7 stored bits and even parity for XXS), 4-bit block scales per 32
// under an fp16 super-scale.
#include "format_ops.h"
#include "grid_quantizer.h"
#include "iq_blocks.h"
#include "iq_dot.h"
#include "quant/float16.h"

namespace quant {
namespace {

// Level values in units of the block scale: IQ3_XXS coordinates / 4 (the top one is 62, not 60),
// IQ3_S coordinates as they are.
constexpr float kValuesXXS[8] = {1, 3, 5, 7, 9, 11, 13, 15.5f};
constexpr float kValuesS[8] = {1, 3, 5, 7, 9, 11, 13, 15};

constexpr GridFormat kFormatXXS{GridKind::IQ3XXS, 32, kValuesXXS, 8, true, 15, 0.2f, 2.f, 0.f, 1e-8f, 1.0125f};
constexpr GridFormat kFormatS{GridKind::IQ3S, 32, kValuesS, 8, false, 9, 0.2f, 2.f, 0.f, 1e-30f, 1.033f};

// 8 values from two grid points of 4 and a sign mask at block scale db. ggml multiplies by -1 or 1,
// which is exactly a flip of the sign bit; written so, the loop vectorizes.
void emit8(uint32_t p0, uint32_t p1, uint8_t signs, float db, float* y) {
    const uint64_t point = p0 | uint64_t{p1} << 32;
    for (int j = 0; j < 8; ++j) {
        const float v = db * static_cast<float>((point >> 8 * j) & 0xff);
        y[j] = detail::float_from_bits(detail::bits_from_float(v) ^ static_cast<uint32_t>(signs >> j & 1) << 31);
    }
}

void iq3_xxs_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ3XXS*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        const uint8_t* qs = x[b].qs;
        for (int ib = 0; ib < kQKK / 32; ++ib, qs += 8) {
            uint32_t aux;  // 4x7 sign bits, scale in the top nibble
            std::memcpy(&aux, x[b].qs + kQKK / 4 + 4 * ib, 4);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l, y += 8) {
                emit8(kGridIQ3XXS[qs[2 * l]], kGridIQ3XXS[qs[2 * l + 1]], kSignsEvenParity[(aux >> 7 * l) & 127], db, y);
            }
        }
    }
}

void iq3_xxs_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ3XXS*>(dst);
    GridSuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_grid_superblock(kFormatXXS, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        y[b].d = s.d;
        for (int g = 0; g < kQKK / 4; ++g) y[b].qs[g] = static_cast<uint8_t>(s.grid[g]);
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            uint32_t aux = static_cast<uint32_t>(s.ls[ib]) << 28;
            for (int l = 0; l < 4; ++l) aux |= static_cast<uint32_t>(s.signs[4 * ib + l] & 127) << 7 * l;
            std::memcpy(y[b].qs + kQKK / 4 + 4 * ib, &aux, 4);
        }
    }
}

void iq3_s_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ3S*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            const int sc = (x[b].scales[ib / 2] >> 4 * (ib % 2)) & 0xf;
            const float db = d * static_cast<float>(1 + 2 * sc);
            const uint8_t* qs = x[b].qs + 8 * ib;
            const int qh = x[b].qh[ib];
            for (int l = 0; l < 4; ++l, y += 8) {
                const int i0 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
                const int i1 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
                emit8(kGridIQ3S[i0], kGridIQ3S[i1], x[b].signs[4 * ib + l], db, y);
            }
        }
    }
}

void iq3_s_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ3S*>(dst);
    GridSuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_grid_superblock(kFormatS, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        y[b].d = s.d;
        std::fill(y[b].qh, y[b].qh + kQKK / 32, uint8_t{0});
        for (int g = 0; g < kQKK / 4; ++g) {
            y[b].qs[g] = static_cast<uint8_t>(s.grid[g] & 255);
            y[b].qh[g / 8] |= static_cast<uint8_t>((s.grid[g] >> 8) << (g % 8));
        }
        std::copy(s.signs, s.signs + kQKK / 8, y[b].signs);
        for (int i = 0; i < kQKK / 64; ++i) y[b].scales[i] = static_cast<uint8_t>(s.ls[2 * i] | s.ls[2 * i + 1] << 4);
    }
}

}  // namespace

// Weights are d * (2 ls + 1) / 4 * grid coordinate for IQ3_XXS, d * (2 ls + 1) * coordinate for IQ3_S.
float dot_iq3_xxs_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ3XXS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const uint8_t* qs = x[b].qs;
        int sumi = 0;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            uint32_t aux;
            std::memcpy(&aux, x[b].qs + kQKK / 4 + 4 * ib, 4);
            int s = 0;
            for (int l = 0; l < 4; ++l) {
                const uint64_t point = kGridIQ3XXS[qs[8 * ib + 2 * l]] | uint64_t{kGridIQ3XXS[qs[8 * ib + 2 * l + 1]]} << 32;
                s += dot8_signed(point, kSignsEvenParity[(aux >> 7 * l) & 127], y[b].qs + 32 * ib + 8 * l);
            }
            sumi += static_cast<int>(2 * (aux >> 28) + 1) * s;
        }
        sum += f16_to_f32(x[b].d) * y[b].d * 0.25f * static_cast<float>(sumi);
    }
    return sum;
}

float dot_iq3_s_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ3S*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        int sumi = 0;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            const uint8_t* qs = x[b].qs + 8 * ib;
            const int qh = x[b].qh[ib];
            int s = 0;
            for (int l = 0; l < 4; ++l) {
                const int i0 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
                const int i1 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
                s += dot8_signed(kGridIQ3S[i0] | uint64_t{kGridIQ3S[i1]} << 32, x[b].signs[4 * ib + l], y[b].qs + 32 * ib + 8 * l);
            }
            sumi += (2 * ((x[b].scales[ib / 2] >> 4 * (ib % 2)) & 0xf) + 1) * s;
        }
        sum += f16_to_f32(x[b].d) * y[b].d * static_cast<float>(sumi);
    }
    return sum;
}

const FormatOps kIQ3_XXSOps{GgmlType::IQ3_XXS, iq3_xxs_dequantize, iq3_xxs_quantize, false, GgmlType::Q8_K,
                            dot_iq3_xxs_q8_k_scalar, dot_iq3_xxs_q8_k_avx2, dot_iq3_xxs_q8_k_avx512};
const FormatOps kIQ3_SOps{GgmlType::IQ3_S, iq3_s_dequantize, iq3_s_quantize, false, GgmlType::Q8_K,
                          dot_iq3_s_q8_k_scalar, dot_iq3_s_q8_k_avx2, dot_iq3_s_q8_k_avx512};

}  // namespace quant
