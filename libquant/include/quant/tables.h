// The value tables of the non-linear and grid formats, public so that code decoding blocks outside
// libquant (the CUDA kernels) reads the very numbers the CPU codecs use instead of a copy of them.
#pragma once

#include <array>
#include <cstdint>

namespace quant {

// The 16 non-linear levels of IQ4_NL / IQ4_XS.
inline constexpr int8_t kValuesIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// E2M1 (MXFP4) values doubled so they are integers; the halving is folded into the scale.
inline constexpr int8_t kValuesMXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// IQ1_S / IQ1_M: the offset added to every grid coordinate, its sign chosen per group (ggml's IQ1S_DELTA).
inline constexpr float kDeltaIQ1 = 0.125f;

// Dequantization grids, identical to ggml's iq2xxs_grid ... iq3s_grid: coordinates 0x08/0x19/0x2b for
// the IQ2 grids, int8 -1/0/+1 for IQ1, 4..62 for IQ3_XXS and the odd numbers 1..15 for IQ3_S.
extern const std::array<uint64_t, 256> kGridIQ2XXS;
extern const std::array<uint64_t, 512> kGridIQ2XS;
extern const std::array<uint64_t, 1024> kGridIQ2S;
extern const std::array<uint64_t, 2048> kGridIQ1S;
extern const std::array<uint32_t, 256> kGridIQ3XXS;
extern const std::array<uint32_t, 512> kGridIQ3S;

// Seven sign bits to eight: bit 7 makes the number of minus signs even (ggml's ksigns_iq2xs).
extern const std::array<uint8_t, 128> kSignsEvenParity;

}  // namespace quant
