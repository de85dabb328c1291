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

namespace detail {
inline float float_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline uint32_t bits_from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
// All ones where `condition` holds: selecting with masks keeps the compiler from turning the choice
// into a branch around the float operation (which, as it might trap, then could not be vectorized).
inline uint32_t mask_if(bool condition) { return 0u - static_cast<uint32_t>(condition); }
inline uint32_t select(bool condition, uint32_t a, uint32_t b) { return (a & mask_if(condition)) | (b & ~mask_if(condition)); }
}  // namespace detail

// Both conversions compute every case and select, without branches, so that loops over rows vectorize.
// Subnormal halves go through a float addition against 0.5, whose ulp is exactly the half's
// subnormal step 2^-24: the FPU does the rounding and no subnormal float is ever an operand.

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    const uint32_t em = h & 0x7fffu;  // exponent and mantissa
    const uint32_t normal = (em << 13) + ((127 - 15) << 23);
    const uint32_t subnormal = detail::bits_from_float(detail::float_from_bits(0x3f000000u | em) - 0.5f);
    // Infinity, or a NaN made quiet, as the F16C instruction and ggml's portable conversion do.
    const uint32_t special = 0x7f800000u | (em << 13) | (detail::mask_if(em & 0x3ff) & 0x400000u);
    const uint32_t magnitude = detail::select(em < 0x400, subnormal, detail::select(em >= 0x7c00, special, normal));
    return detail::float_from_bits(sign | magnitude);
}

inline uint16_t f32_to_f16(float f) {
    const uint32_t u = detail::bits_from_float(f);
    const uint32_t sign = (u >> 16) & 0x8000;
    const uint32_t a = u & 0x7fffffff;
    // Normal halves: rebias the exponent (127 -> 15) and round the mantissa to 10 bits, ties to even.
    const uint32_t normal = (a - 0x38000000u + 0xfffu + ((a >> 13) & 1)) >> 13;
    const uint32_t subnormal = detail::bits_from_float(detail::float_from_bits(a) + 0.5f) - 0x3f000000u;
    uint32_t h = detail::select(a < 0x38800000u, subnormal, normal);  // below 2^-14 the half is subnormal
    h = detail::select(a >= 0x477ff000u, 0x7c00u, h);                 // rounds past 65504: infinity
    h = detail::select(a > 0x7f800000u, 0x7e00u, h);                  // NaN
    return static_cast<uint16_t>(sign | h);
}

}  // namespace quant
