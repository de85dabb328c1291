// 256-bit helpers shared by dot_avx2.cpp and dot_avx512.cpp. Each includer is compiled with its own
// instruction-set flags, so these must not be merged across files by the linker: they live in an
// unnamed namespace (one private copy per file) rather than as ordinary inline functions, whose
// AVX-512-encoded copy could otherwise be picked for the AVX2 path.
#pragma once

#include "x86_intrinsics.h"

#include <cstdint>
#include <cstring>

#include "block_common.h"

namespace quant {
namespace {

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline int hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

inline float fp16(uint16_t h) { return _cvtsh_ss(h); }

// Eight int32 sums of u[i] * s[i] (u unsigned, s signed) over groups of four bytes.
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

inline __m256i dot_i8_i8(__m256i a, __m256i b) { return dot_u8_i8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)); }

// The 32 nibbles of a legacy block in element order: low nibbles are elements 0-15, high 16-31.
inline __m256i nibbles32(const uint8_t* qs) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// 0x10 in byte i where bit i of the Q5 high-bit word is set.
inline __m256i fifth_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    // Byte i of the result looks at byte i / 8 of the word, then at its bit i % 8.
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(bits)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// int16 multipliers for a 32-element run covering two 16-element sub-blocks.
inline __m256i scale_pair(int first, int second) {
    return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(second)), _mm_set1_epi16(static_cast<int16_t>(first)));
}

// Eight int32 sums of scale[j] * bsums[j] over the 16 sub-blocks of a super-block: what an offset
// or minimum per sub-block contributes, since bsums[j] is the sum of the activations it multiplies.
inline __m256i scaled_block_sums(__m128i scales16, const BlockQ8_K& y) {
    return _mm256_madd_epi16(_mm256_cvtepi8_epi16(scales16), load(y.bsums));
}

// Q4_K and Q5_K: unpacks the 8 sub-block scales and returns the minimums' integer contribution,
// sum of m_j times the activation sums of sub-block j (in SIMD: the scalar loop cost about as much as
// the products for a 2048-wide row).
template <typename Block>
int scale_min_sums(const Block& x, const BlockQ8_K& y, uint8_t* sc) {
    uint8_t m[8];
    unpack_scales_mins_k4(x.scales, sc, m);
    int64_t m8;
    std::memcpy(&m8, m, 8);
    const __m128i mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(m8));
    // the activation sums of the 8 sub-blocks of 32 (pairs of 16; each fits int16: |sum| <= 32 * 128)
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums)),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums + 8)));
    __m128i p = _mm_madd_epi16(mins, pairs);
    p = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 1));
    return _mm_cvtsi128_si32(p);
}

}  // namespace
}  // namespace quant
