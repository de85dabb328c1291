// The small value tables and helpers of the non-linear, microscaled and ternary formats (IQ4_NL, IQ4_XS,
// MXFP4, TQ*, IQ1-IQ3); their block layouts are in quant/blocks.h, the IQ1-IQ3 grids in iq_grids.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "block_common.h"
#include "quant/tables.h"

namespace quant {

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
