// What the block formats share: ggml's block layouts (byte for byte, so rows are interchangeable with
// llama.cpp), the rounding helper its quantizers use, the K-quant scale packings, and the scale-search
// routines (ggml's make_qx_quants family). The searches are reproduced operation for operation: ggml's
// quantizers are the reference our output is compared with, and float sums only agree when they are
// accumulated in the same order.
#pragma once

#include <cstdint>
#include <cstring>

namespace quant {

inline constexpr int kQK = 32;    // elements in a legacy block (Q4_0 ... Q8_0)
inline constexpr int kQKK = 256;  // elements in a K-quant super-block

// fp16 fields are raw IEEE half bits (quant/float16.h converts them).
struct BlockQ4_0 {  // x = d * (q - 8)
    uint16_t d;
    uint8_t qs[kQK / 2];  // element j in the low nibble of byte j, element j+16 in its high nibble
};
struct BlockQ4_1 {  // x = d * q + m
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {  // x = d * (q - 16); bit 4 of element j is bit j of qh
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {  // x = d * q + m
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {  // x = d * q
    uint16_t d;
    int8_t qs[kQK];
};
// 16 sub-blocks of 16: x = d * (scales & 15) * q - dmin * (scales >> 4)
struct BlockQ2_K {
    uint8_t scales[kQKK / 16];
    uint8_t qs[kQKK / 4];  // 2-bit quants, see pack_2bit
    uint16_t d;
    uint16_t dmin;
};
// 16 sub-blocks of 16: x = d * (scale - 32) * (q - 4), q's bit 2 in hmask
struct BlockQ3_K {
    uint8_t hmask[kQKK / 8];  // bit b of byte m: element m + 32 * b
    uint8_t qs[kQKK / 4];
    uint8_t scales[12];  // 16 6-bit scales, see unpack_q3_k_scales
    uint16_t d;
};
// 8 sub-blocks of 32: x = d * sc * q - dmin * m, 6-bit sc and m packed in scales (see unpack_scale_min_k4)
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[kQKK / 2];  // per 64 elements: 32 bytes, low nibbles first 32, high nibbles next 32
};
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[kQKK / 8];  // bit 4: element 32 * b + l in bit b of qh[l]
    uint8_t qs[kQKK / 2];
};
// 16 sub-blocks of 16: x = d * scales * (q - 32)
struct BlockQ6_K {
    uint8_t ql[kQKK / 2];
    uint8_t qh[kQKK / 4];
    int8_t scales[kQKK / 16];
    uint16_t d;
};
// The activation format the K-quant dot products take: x = d * q, with the sums of each 16 quants
// precomputed so the kernels can apply per-sub-block minimums cheaply.
struct BlockQ8_K {
    float d;
    int8_t qs[kQKK];
    int16_t bsums[kQKK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

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
