// What the tile kernels of both instruction sets share (gemm_avx2.cpp, gemm_avx512.cpp). The tile
// loops themselves stay per level: AVX2 walks one weight row at a time into 8-lane accumulators (16
// registers), AVX-512 all four rows into 16-lane ones, and the float sums of their lanes round
// differently, so one loop would change one level's bits. As dot_x86.h, everything here lives in an
// unnamed namespace: one private copy per file, each compiled with its own instruction-set flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gemm_kernels.h"
#include "x86_intrinsics.h"

namespace quant {
namespace {

// The tag a level's `tile` overloads are chosen by: tile<NC>(Kind<BlockQ4_K>{}, n, w, stride, a, out)
// multiplies kGemmRows weight rows of that block type with NC activation rows.
template <typename Block>
using Kind = std::type_identity<Block>;

// Weight row r of a tile whose rows are `stride` bytes apart.
template <typename Block>
inline const Block* row_of(const void* w, size_t stride, int r) {
    return reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * stride);
}

// unpack_q3_k_scales in one vector (a vector load of bytes just written one by one would stall): the
// low nibbles of bytes 0-7 (scales 0-7) then their high nibbles (8-15), with bits 4-5 of scale j from
// bits 2 (j / 4) of byte 8 + j % 4, minus the bias of 32.
inline __m128i q3_k_scales(const uint8_t* packed) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed));
    const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(bytes, m4), _mm_and_si128(_mm_srli_epi16(bytes, 4), m4));
    uint32_t bits;
    std::memcpy(&bits, packed + 8, 4);
    const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(bits)), _mm_setr_epi32(0, 2, 4, 6)),
                                       _mm_set1_epi8(3));
    return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
}

}  // namespace
}  // namespace quant
