// ggml's block layouts, byte for byte, so that rows are interchangeable with llama.cpp's: the one
// definition that the CPU codecs and kernels and the CUDA kernels all read. Plain structs of fixed-width
// fields (no functions), so that host and device compilers agree on them. fp16 fields are raw IEEE half
// bits (quant/float16.h converts them on the host).
#pragma once

#include <cstdint>

namespace quant {

inline constexpr int kQK = 32;    // elements in a legacy block (Q4_0 ... Q8_0)
inline constexpr int kQKK = 256;  // elements in a K-quant super-block

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

// Non-linear, microscaled and ternary formats; the grids of the IQ1/IQ2/IQ3 families are in the codecs.
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

}  // namespace quant
