// IEEE half and bfloat16 conversions, rounding as ggml does (nearest even; NaN stays NaN).
#pragma once

#include <cstdint>
#include <cstring>

namespace quant {

inline float bf16_to_f32(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
    return static_cast<uint16_t>((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {
        // Infinity, or a NaN made quiet, as the F16C instruction and ggml's portable conversion do.
        u = sign | 0x7f800000 | (mant << 13) | (mant ? 0x400000u : 0u);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        u = sign;
    } else {  // subnormal: normalize
        int e = -1;
        do {
            ++e;
            mant <<= 1;
        } while ((mant & 0x400) == 0);
        u = sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3ff) << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline uint16_t f32_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
    const uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000) return sign | 0x7e00;                  // NaN
    if (abs >= 0x477ff000) return sign | 0x7c00;                 // overflow (incl. inf) after rounding
    if (abs < 0x38800000) {                                      // subnormal or zero in half
        if (abs < 0x33000000) return sign;                       // rounds to zero
        const uint32_t e = abs >> 23;
        const uint32_t m = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;                          // 14 + (113 - e) - 1
        uint32_t half = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1);
        const uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) ++half;
        return sign | static_cast<uint16_t>(half);
    }
    uint32_t r = abs - 0x38000000;                               // rebias exponent 127 -> 15
    r += 0xfff + ((r >> 13) & 1);                                // round to nearest even
    return sign | static_cast<uint16_t>(r >> 13);
}

}  // namespace quant
