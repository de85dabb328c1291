// What the matrix kernels share: error checks, loads of blocks whose alignment is only that of their
// fp16 fields, half conversions of the raw uint16 fields of quant/blocks.h, and the 16-entry table
// lookups of the non-linear formats.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/matmul_kernels.h"
#include "quant/blocks.h"
#include "quant/tables.h"
#include "runtime/error.h"

namespace runtime::cuda {

// Throws runtime::Error naming the call that failed.
inline void check_cuda(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}
// After a launch: configuration errors show up here (execution errors at the next synchronisation).
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

inline constexpr int kMaxTokens = 8;  // mmvq's n_tok limit: accumulators live in registers

__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// A 32-bit word at an address that is only 2-byte aligned (blocks of 18, 22, 34, 110, 210 bytes).
__device__ __forceinline__ uint32_t load_u32_a2(const uint8_t* p) {
    const auto* q = reinterpret_cast<const uint16_t*>(p);
    return static_cast<uint32_t>(q[0]) | static_cast<uint32_t>(q[1]) << 16;
}
__device__ __forceinline__ uint32_t load_u32_a4(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
// Byte-aligned (MXFP4's 17-byte blocks).
__device__ __forceinline__ uint32_t load_u32_a1(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
}

// Four 4-bit indices (the low nibble of each byte of q) through a 16-entry int8 table held as four
// words (entries 4i..4i+3 in word i): two byte permutations pick from each half of the table and the
// index's bit 3 chooses between them, all in registers.
__device__ __forceinline__ int lookup16(uint32_t q, const uint32_t (&table)[4]) {
    const uint32_t t = q | (q >> 4);                                        // byte 0: i0 | i1 << 4, byte 2: i2 | i3 << 4
    const uint32_t sel = ((t & 0xff) | ((t >> 8) & 0xff00)) & 0x7777;      // four 3-bit selectors
    const uint32_t lo = __byte_perm(table[0], table[1], sel);
    const uint32_t hi = __byte_perm(table[2], table[3], sel);
    const uint32_t upper = ((q >> 3) & 0x01010101u) * 0xffu;              // 0xff in bytes whose index >= 8
    return static_cast<int>((hi & upper) | (lo & ~upper));
}

// Bits 0..3 of b spread to bit 4 of bytes 0..3 (the fifth bit of Q5_0/Q5_1 levels).
__device__ __forceinline__ uint32_t spread4_to_bit4(uint32_t b) {
    return ((b & 1u) << 4) | ((b & 2u) << 11) | ((b & 4u) << 18) | ((b & 8u) << 25);
}

// Activation block b of q8_1 row `row`: its scale, and d * sum(qs).
__device__ __forceinline__ float2 q8_1_ds(const BlockQ8_1* blk) {
    const uint32_t w = *reinterpret_cast<const uint32_t*>(blk);
    return make_float2(half_bits_to_float(static_cast<uint16_t>(w & 0xffff)), half_bits_to_float(static_cast<uint16_t>(w >> 16)));
}
__device__ __forceinline__ int q8_1_word(const BlockQ8_1* blk, int w) {
    return reinterpret_cast<const int*>(blk->qs)[w];
}

// The 16-entry tables of quant/tables.h as words for lookup16 (entries 4i..4i+3 in word i). Built at
// compile time from libquant's arrays; each translation unit holds its own copy (no relocatable device
// code needed).
constexpr uint32_t table_word(const int8_t* v, int i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(v[4 * i])) |
           static_cast<uint32_t>(static_cast<uint8_t>(v[4 * i + 1])) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(v[4 * i + 2])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(v[4 * i + 3])) << 24;
}
static __constant__ uint32_t c_iq4nl_words[4] = {
    table_word(quant::kValuesIQ4NL, 0), table_word(quant::kValuesIQ4NL, 1), table_word(quant::kValuesIQ4NL, 2),
    table_word(quant::kValuesIQ4NL, 3)};
static __constant__ uint32_t c_mxfp4_words[4] = {
    table_word(quant::kValuesMXFP4, 0), table_word(quant::kValuesMXFP4, 1), table_word(quant::kValuesMXFP4, 2),
    table_word(quant::kValuesMXFP4, 3)};

// Entry i of a 16-entry table held as words.
__device__ __forceinline__ int table_value(const uint32_t (&words)[4], int i) {
    return static_cast<int8_t>(words[i >> 2] >> (8 * (i & 3)));
}

// E8M0 exponent to 2^(e-128) (half the OCP scale, matching the doubled MXFP4 table), as libquant.
__device__ __forceinline__ float e8m0_to_float_half(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
    return __uint_as_float(bits);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace runtime::cuda
