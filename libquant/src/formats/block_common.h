// What the block codecs share besides the layouts (quant/blocks.h): the rounding helper their
// quantizers use, the K-quant scale packings, and the scale-search routines (ggml's make_qx_quants
// family). The searches are reproduced operation for operation: ggml's quantizers are the reference
// our output is compared with, and float sums only agree when they are accumulated in the same order.
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace quant {

// Below this a group is treated as all zeros by the searches (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the rounded integer in the
// low mantissa bits. ggml rounds with exactly this, and lrintf would depend on the FP environment.
inline int nearest_int(float v) {
    const float biased = v + 12582912.f;
    int32_t bits;
    std::memcpy(&bits, &biased, 4);
    return (bits & 0x007fffff) - 0x00400000;
}

// roundf (ties away from zero) for |v| < 2^22 without the library call, which the compiler cannot
// inline on baseline x86-64: rounds to even, then moves the ties that went towards zero.
inline int round_half_away(float v) {
    const int r = nearest_int(v);
    const float below = v - static_cast<float>(r);  // exact: v and r are within 1/2 of each other
    if (below == 0.5f && v > 0) return r + 1;
    if (below == -0.5f && v < 0) return r - 1;
    return r;
}

// Q4_K / Q5_K: sub-block j's 6-bit scale and min from the 12 packed bytes.
inline void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// All 8 of them at once, as unpack_scale_min_k4 gives them, from the 12 bytes read as three 32-bit
// words (four 6-bit values per mask): the kernels run this once per block and row, where the byte
// at a time version cost about as much as a row's products. Sub-blocks 0-3 keep their low 6 bits in
// bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 take a nibble from bytes 8-11 and their top two
// bits from the top bits of bytes 0-3 (scales) and 4-7 (mins). Little-endian, as the file format.
inline void unpack_scales_mins_k4(const uint8_t* q, uint8_t* sc, uint8_t* m) {
    uint32_t u[3];
    std::memcpy(u, q, sizeof u);
    const uint32_t words[4] = {u[0] & 0x3f3f3f3fu, (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u),
                               u[1] & 0x3f3f3f3fu, ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u)};
    std::memcpy(sc, words, 8);
    std::memcpy(m, words + 2, 8);
}

// The inverse of unpack_scale_min_k4 for all 8 sub-blocks (values < 64).
inline void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
    for (int j = 0; j < 4; ++j) {
        q[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
        q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

// Q3_K: the 16 6-bit scales, biased by 32, from the 12 packed bytes (low nibbles in bytes 0-7,
// high 2 bits in bytes 8-11).
inline void unpack_q3_k_scales(const uint8_t* packed, int8_t* scales) {
    for (int j = 0; j < 16; ++j) {
        const int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
        const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = static_cast<int8_t>((low | (high << 4)) - 32);
    }
}

inline void pack_q3_k_scales(const uint8_t* biased, uint8_t* packed) {
    std::memset(packed, 0, 12);
    for (int j = 0; j < 16; ++j) {
        packed[j % 8] |= static_cast<uint8_t>((biased[j] & 0xF) << (j < 8 ? 0 : 4));
        packed[8 + j % 4] |= static_cast<uint8_t>((biased[j] >> 4) << (2 * (j / 4)));
    }
}

// Q2_K / Q3_K low bits: 4 elements a byte, element 32 * s + l of each 128 in bits 2s of byte l.
inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < kQKK; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                                 (L[j + l + 96] << 6));
        }
    }
}

// The scale searches. `weights` give each element's importance in the squared error; where a function
// accepts null it means x^2 (ggml's default of weighting big values more).

// Symmetric scale for levels -nmax..nmax-1: tries 19 scales around -nmax/max, keeps the one with the
// best weighted least-squares fit. L gets level + nmax. Returns the scale (0 for an all-zero group).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* weights);

// Symmetric with x^2 weights, refined element by element (Q3_K without an imatrix). L gets level + nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Scale and minimum for levels 0..nmax: x ~ scale * L - the_min. Tries nstep+1 scales
// (nmax + rmin + rdelta * i) / range, each with the least-squares scale/min for its levels.
// make_qkx2 scores by weighted |error| when use_mad, else squared error; make_qkx3 accepts null
// weights and guards the search against a minimum that drifted up to the maximum.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

// Non-negative values (sub-block scales) on levels 0..nmax with a shared scale, refined per element.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* weights);

}  // namespace quant
