// IQ2_XXS, IQ2_XS and IQ2_S: groups of 8 magnitudes on an E8-like grid (256, 512 and 1024 points with
// coordinates 0x08, 0x19, 0x2b), signs per 8 (7 stored bits and even parity for XXS/XS), 4-bit block
// scales under an fp16 super-scale. ggml quantizes IQ2_XXS and IQ2_XS only with an importance matrix.
#include "format_ops.h"
#include "grid_quantizer.h"
#include "iq_blocks.h"
#include "iq_dot.h"
#include "quant/float16.h"

namespace quant {
namespace {

// Grid coordinates 8, 25, 43 in units of the block scale / 8 (dequantization multiplies by 0.125).
constexpr float kLevelValues[3] = {1.f, 3.125f, 5.375f};

constexpr GridFormat kFormatXXS{GridKind::IQ2XXS, 32, kLevelValues, 3, true, 9, 0.1f, 1.f, 0.25f, 1e-15f, 1.f};
constexpr GridFormat kFormatXS{GridKind::IQ2XS, 16, kLevelValues, 3, true, 9, 0.1f, 1.f, 0.25f, 1e-15f, 1.f};
constexpr GridFormat kFormatS{GridKind::IQ2S, 16, kLevelValues, 3, false, 9, 0.1f, 2.f, 0.25f, 1e-8f, 0.9875f};

// 8 dequantized values of a grid point with a sign mask at block scale db. ggml multiplies by -1 or 1,
// which is exactly a flip of the sign bit; written so, the loop vectorizes.
void emit8(uint64_t point, uint8_t signs, float db, float* y) {
    for (int j = 0; j < 8; ++j) {
        const float v = db * static_cast<float>(grid_coord(point, j));
        y[j] = detail::float_from_bits(detail::bits_from_float(v) ^ static_cast<uint32_t>(signs >> j & 1) << 31);
    }
}

void iq2_xxs_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ2XXS*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            uint32_t grid, aux;  // four grid indices; 4x7 sign bits and the scale in the top nibble
            std::memcpy(&grid, x[b].qs + 4 * ib, 4);
            std::memcpy(&aux, x[b].qs + 4 * ib + 2, 4);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l, y += 8) {
                emit8(kGridIQ2XXS[(grid >> 8 * l) & 0xff], kSignsEvenParity[(aux >> 7 * l) & 127], db, y);
            }
        }
    }
}

void iq2_xxs_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ2XXS*>(dst);
    GridSuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_grid_superblock(kFormatXXS, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        y[b].d = s.d;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            uint32_t grid = 0, aux = static_cast<uint32_t>(s.ls[ib]) << 28;
            for (int l = 0; l < 4; ++l) {
                grid |= static_cast<uint32_t>(s.grid[4 * ib + l]) << 8 * l;
                aux |= static_cast<uint32_t>(s.signs[4 * ib + l] & 127) << 7 * l;
            }
            std::memcpy(y[b].qs + 4 * ib, &grid, 4);
            std::memcpy(y[b].qs + 4 * ib + 2, &aux, 4);
        }
    }
}

void iq2_xs_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ2XS*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            const float db[2] = {d * (0.5f + static_cast<float>(x[b].scales[ib] & 0xf)) * 0.25f,
                                 d * (0.5f + static_cast<float>(x[b].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l, y += 8) {
                const uint16_t q = x[b].qs[4 * ib + l];
                emit8(kGridIQ2XS[q & 511], kSignsEvenParity[q >> 9], db[l / 2], y);
            }
        }
    }
}

void iq2_xs_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ2XS*>(dst);
    GridSuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_grid_superblock(kFormatXS, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        y[b].d = s.d;
        for (int g = 0; g < kQKK / 8; ++g) y[b].qs[g] = static_cast<uint16_t>(s.grid[g] | (s.signs[g] & 127) << 9);
        for (int ib = 0; ib < kQKK / 32; ++ib) y[b].scales[ib] = static_cast<uint8_t>(s.ls[2 * ib] | s.ls[2 * ib + 1] << 4);
    }
}

void iq2_s_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ2S*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        const uint8_t* signs = x[b].qs + kQKK / 8;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            const float db[2] = {d * (0.5f + static_cast<float>(x[b].scales[ib] & 0xf)) * 0.25f,
                                 d * (0.5f + static_cast<float>(x[b].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l, y += 8) {
                const int g = 4 * ib + l;
                const int index = x[b].qs[g] | ((x[b].qh[ib] << (8 - 2 * l)) & 0x300);
                emit8(kGridIQ2S[index], signs[g], db[l / 2], y);
            }
        }
    }
}

void iq2_s_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ2S*>(dst);
    GridSuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_grid_superblock(kFormatS, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        y[b].d = s.d;
        std::fill(y[b].qh, y[b].qh + kQKK / 32, uint8_t{0});
        for (int g = 0; g < kQKK / 8; ++g) {
            y[b].qs[g] = static_cast<uint8_t>(s.grid[g] & 255);
            y[b].qh[g / 4] |= static_cast<uint8_t>((s.grid[g] >> 8) << 2 * (g % 4));
            y[b].qs[kQKK / 8 + g] = s.signs[g];
        }
        for (int ib = 0; ib < kQKK / 32; ++ib) y[b].scales[ib] = static_cast<uint8_t>(s.ls[2 * ib] | s.ls[2 * ib + 1] << 4);
    }
}

}  // namespace

// Weights are d * (2 ls + 1) / 8 * grid coordinate: integer sums per block scale, one float per super-block.
float dot_iq2_xxs_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ2XXS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        int sumi = 0;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            uint32_t grid, aux;
            std::memcpy(&grid, x[b].qs + 4 * ib, 4);
            std::memcpy(&aux, x[b].qs + 4 * ib + 2, 4);
            int s = 0;
            for (int l = 0; l < 4; ++l) {
                s += dot8_signed(kGridIQ2XXS[(grid >> 8 * l) & 0xff], kSignsEvenParity[(aux >> 7 * l) & 127],
                                 y[b].qs + 32 * ib + 8 * l);
            }
            sumi += static_cast<int>(2 * (aux >> 28) + 1) * s;
        }
        sum += f16_to_f32(x[b].d) * y[b].d * 0.125f * static_cast<float>(sumi);
    }
    return sum;
}

float dot_iq2_xs_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ2XS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        int sumi = 0;
        for (int g = 0; g < kQKK / 8; ++g) {
            const uint16_t q = x[b].qs[g];
            const int ls = 2 * ((x[b].scales[g / 4] >> 4 * (g / 2 % 2)) & 0xf) + 1;
            sumi += ls * dot8_signed(kGridIQ2XS[q & 511], kSignsEvenParity[q >> 9], y[b].qs + 8 * g);
        }
        sum += f16_to_f32(x[b].d) * y[b].d * 0.125f * static_cast<float>(sumi);
    }
    return sum;
}

float dot_iq2_s_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ2S*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        int sumi = 0;
        for (int g = 0; g < kQKK / 8; ++g) {
            const int index = x[b].qs[g] | ((x[b].qh[g / 4] << (8 - 2 * (g % 4))) & 0x300);
            const int ls = 2 * ((x[b].scales[g / 4] >> 4 * (g / 2 % 2)) & 0xf) + 1;
            sumi += ls * dot8_signed(kGridIQ2S[index], x[b].qs[kQKK / 8 + g], y[b].qs + 8 * g);
        }
        sum += f16_to_f32(x[b].d) * y[b].d * 0.125f * static_cast<float>(sumi);
    }
    return sum;
}

const FormatOps kIQ2_XXSOps{GgmlType::IQ2_XXS, iq2_xxs_dequantize, iq2_xxs_quantize, true, GgmlType::Q8_K,
                            dot_iq2_xxs_q8_k_scalar, dot_iq2_xxs_q8_k_avx2, dot_iq2_xxs_q8_k_avx512};
const FormatOps kIQ2_XSOps{GgmlType::IQ2_XS, iq2_xs_dequantize, iq2_xs_quantize, true, GgmlType::Q8_K,
                           dot_iq2_xs_q8_k_scalar, dot_iq2_xs_q8_k_avx2, dot_iq2_xs_q8_k_avx512};
const FormatOps kIQ2_SOps{GgmlType::IQ2_S, iq2_s_dequantize, iq2_s_quantize, false, GgmlType::Q8_K,
                          dot_iq2_s_q8_k_scalar, dot_iq2_s_q8_k_avx2, dot_iq2_s_q8_k_avx512};

}  // namespace quant
