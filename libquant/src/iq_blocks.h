// Block layouts of the non-linear, microscaled and ternary formats (IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0,
// IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_S, IQ1_M), byte for byte ggml's, plus the small value tables
// their dequantization uses. The grids of the IQ1/IQ2/IQ3 families are in iq_grids.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "block_common.h"

namespace quant {

struct BlockIQ4NL {
    uint16_t d;
    uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], element j+16 in the high one
};
static_assert(sizeof(BlockIQ4NL) == 18);

struct BlockIQ4XS {
    uint16_t d;
    uint16_t scales_h;              // high 2 bits of the eight 6-bit block scales
    uint8_t scales_l[kQKK / 64];   // low 4 bits, two per byte
    uint8_t qs[kQKK / 2];          // per 32-block, nibbles as in IQ4_NL
};
static_assert(sizeof(BlockIQ4XS) == 136);

struct BlockMXFP4 {
    uint8_t e;  // E8M0 shared exponent
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockMXFP4) == 17);

struct BlockTQ1_0 {
    uint8_t qs[(kQKK - 4 * kQKK / 64) / 5];  // 5 trits per byte
    uint8_t qh[kQKK / 64];                    // 4 trits per byte
    uint16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);

struct BlockTQ2_0 {
    uint8_t qs[kQKK / 4];  // 2 bits per element
    uint16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

struct BlockIQ2XXS {
    uint16_t d;
    uint16_t qs[kQKK / 8];  // per 32: four grid bytes, then 4x7 sign bits and a 4-bit scale
};
static_assert(sizeof(BlockIQ2XXS) == 66);

struct BlockIQ2XS {
    uint16_t d;
    uint16_t qs[kQKK / 8];       // 9-bit grid index | 7 sign bits
    uint8_t scales[kQKK / 32];   // two 4-bit scales per 32
};
static_assert(sizeof(BlockIQ2XS) == 74);

struct BlockIQ2S {
    uint16_t d;
    uint8_t qs[kQKK / 4];        // low 8 grid-index bits (first half), sign bytes (second half)
    uint8_t qh[kQKK / 32];       // high 2 grid-index bits
    uint8_t scales[kQKK / 32];
};
static_assert(sizeof(BlockIQ2S) == 82);

struct BlockIQ3XXS {
    uint16_t d;
    uint8_t qs[3 * kQKK / 8];  // 64 grid indices, then per 32 a u32 of 4x7 sign bits and a 4-bit scale
};
static_assert(sizeof(BlockIQ3XXS) == 98);

struct BlockIQ3S {
    uint16_t d;
    uint8_t qs[kQKK / 4];       // low 8 grid-index bits
    uint8_t qh[kQKK / 32];      // 9th grid-index bit
    uint8_t signs[kQKK / 8];
    uint8_t scales[kQKK / 64];  // two 4-bit scales per byte
};
static_assert(sizeof(BlockIQ3S) == 110);

struct BlockIQ1S {
    uint16_t d;
    uint8_t qs[kQKK / 8];    // low 8 grid-index bits
    uint16_t qh[kQKK / 32];  // per 32: 4x3 high index bits, 3-bit scale, delta sign
};
static_assert(sizeof(BlockIQ1S) == 50);

struct BlockIQ1M {
    uint8_t qs[kQKK / 8];       // low 8 grid-index bits
    uint8_t qh[kQKK / 16];      // per 16: 2x (3 high index bits + delta sign)
    uint8_t scales[kQKK / 32];  // 3-bit scales; the fp16 super-scale is spread over their top nibbles
};
static_assert(sizeof(BlockIQ1M) == 56);

// The 16 non-linear levels of IQ4_NL / IQ4_XS.
inline constexpr int8_t kValuesIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// E2M1 (MXFP4) values doubled so they are integers; the halving is folded into the scale.
inline constexpr int8_t kValuesMXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// E8M0 exponent to 2^(e-128): half the OCP scale, matching the doubled value table. e 0 and 1 are
// subnormal floats.
inline float e8m0_to_f32_half(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Integer dot of 8 unsigned grid coordinates (byte j of point) with 8 activations, activation j negated
// where bit j of signs is set: the inner step of the grid formats' scalar dot products.
inline int dot8_signed(uint64_t point, uint8_t signs, const int8_t* a) {
    int s = 0;
    for (int j = 0; j < 8; ++j) s += static_cast<int>((point >> 8 * j) & 0xff) * (signs >> j & 1 ? -a[j] : a[j]);
    return s;
}

}  // namespace quant
