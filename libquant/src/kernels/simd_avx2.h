// The vector vocabulary of the kernels written once for both instruction sets (dot_simd.inc), in its
// AVX2 form: 8 floats, one 32-block of bytes per integer vector, and the 64-byte "wide" vector as a
// pair of 256-bit registers. Included only by files compiled with -mavx2 -mfma -mf16c; like
// dot_x86.h it lives in an unnamed namespace so no copy is shared with a file of another level.
#pragma once

#include "dot_x86.h"

namespace quant {
namespace {

struct Simd {
    // --- floats
    using F = __m256;
    static constexpr int kFloats = 8;
    static F fzero() { return _mm256_setzero_ps(); }
    static F fadd(F a, F b) { return _mm256_add_ps(a, b); }
    static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static float reduce(F v) { return hsum(v); }
    static F load_f32(const float* p) { return _mm256_loadu_ps(p); }
    static F load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static F load_bf16(const uint16_t* p) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }

    // --- 32-blocks: kBlocks blocks per integer vector I
    using I = __m256i;
    static constexpr int kBlocks = 1;
    template <typename Block, typename Bytes>
    static I blocks(const Block* x, Bytes bytes) { return bytes(x[0]); }
    static I ones8() { return _mm256_set1_epi8(1); }
    static I dot_u8_i8(I u, I s) { return quant::dot_u8_i8(u, s); }
    static I dot_i8_i8(I w, I a) { return quant::dot_i8_i8(w, a); }
    static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
    // the float scale of each block, in the lanes of that block's sums
    static F block_scales(const float* s) { return _mm256_set1_ps(s[0]); }

    // --- 64-byte vectors (a quarter of a K-quant super-block): two registers
    struct W {
        __m256i lo, hi;
    };
    static W wzero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
    static W join(__m256i lo, __m256i hi) { return {lo, hi}; }
    static W load64(const void* p) { return {load(p), load(static_cast<const uint8_t*>(p) + 32)}; }
    static W set8(char v) { return {_mm256_set1_epi8(v), _mm256_set1_epi8(v)}; }
    static W and_(W a, W b) { return {_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)}; }
    static W or_(W a, W b) { return {_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)}; }
    static W srli16(W a, int k) { return {_mm256_srli_epi16(a.lo, k), _mm256_srli_epi16(a.hi, k)}; }
    static W add32(W a, W b) { return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)}; }
    // sums of u * s over byte pairs (no saturation: see dot_avx2.cpp), times int16 scales over pairs
    static W scaled_dot(W u, W s, W scales) {
        return {_mm256_madd_epi16(_mm256_maddubs_epi16(u.lo, s.lo), scales.lo),
                _mm256_madd_epi16(_mm256_maddubs_epi16(u.hi, s.hi), scales.hi)};
    }
    // the 16 int32 sums added pairwise into 8 (exact), as the float accumulators take them
    static __m256i fold(W v) { return _mm256_add_epi32(v.lo, v.hi); }
    static W set16(int16_t v) { return {_mm256_set1_epi16(v), _mm256_set1_epi16(v)}; }
    // per byte (unsigned), how many of the bounds a <= b it reaches: 0, 1 or 2
    static W bounds_reached(W v, uint8_t a, uint8_t b) {
        auto count = [&](__m256i x) {
            auto at_least = [&](uint8_t bound) {
                return _mm256_cmpeq_epi8(_mm256_max_epu8(x, _mm256_set1_epi8(static_cast<char>(bound))), x);
            };
            return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(at_least(a), at_least(b)));
        };
        return {count(v.lo), count(v.hi)};
    }
    // Minus the 16 activation sums of a Q8_K block, as int32 sums that fold() adds up pairwise.
    static W minus_block_sums(const BlockQ8_K& y) { return {_mm256_madd_epi16(load(y.bsums), _mm256_set1_epi16(-1)), _mm256_setzero_si256()}; }
    // Float accumulators of whole-block integer sums, scaled by one float per block: 8 lanes (folded).
    using WAcc = __m256;
    static WAcc wacc_zero() { return _mm256_setzero_ps(); }
    static WAcc wacc_add(WAcc acc, float d, W sumi) { return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc); }
    static float wacc_sum(WAcc acc) { return hsum(acc); }

    // --- 16 floats, and 16 int32 made from them (the activation quantizers): two registers each
    struct F16 {
        __m256 lo, hi;
    };
    struct I16 {
        __m256i lo, hi;
    };
    static F16 load16(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
    static F16 zero16() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
    static F16 abs16(F16 v) {
        const __m256 sign = _mm256_set1_ps(-0.0f);
        return {_mm256_andnot_ps(sign, v.lo), _mm256_andnot_ps(sign, v.hi)};
    }
    static F16 max16(F16 a, F16 b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
    static F16 mul16(F16 v, float s) { return {_mm256_mul_ps(v.lo, _mm256_set1_ps(s)), _mm256_mul_ps(v.hi, _mm256_set1_ps(s))}; }
    static float reduce_max16(F16 v) {
        const __m256 m8 = _mm256_max_ps(v.lo, v.hi);
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        return _mm_cvtss_f32(m);
    }
    // bit i set where lane i equals x
    static unsigned equal_mask16(F16 v, float x) {
        const __m256 e = _mm256_set1_ps(x);
        return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v.lo, e, _CMP_EQ_OQ))) |
               static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v.hi, e, _CMP_EQ_OQ))) << 8;
    }
    // ties to even: the conversion's default rounding mode
    static I16 round_even16(F16 v) { return {_mm256_cvtps_epi32(v.lo), _mm256_cvtps_epi32(v.hi)}; }
    static I16 min16(I16 v, int limit) {
        return {_mm256_min_epi32(v.lo, _mm256_set1_epi32(limit)), _mm256_min_epi32(v.hi, _mm256_set1_epi32(limit))};
    }
    // the 16 values (in -128..127) as bytes, in order
    static void store_bytes16(int8_t* dst, I16 v) {
        const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(v.lo, v.hi), 0xD8);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                         _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)));
    }
    static int sum16(I16 v) { return hsum(_mm256_add_epi32(v.lo, v.hi)); }

    // Sub-block scales as int16 lanes of a W. Four sub-blocks of 16 elements, given as values:
    static W scales_16x4(int s0, int s1, int s2, int s3) { return {scale_pair(s0, s1), scale_pair(s2, s3)}; }
    // Two sub-blocks of 32, from the 8 unsigned scales of a Q4_K/Q5_K super-block (k, k + 1):
    using Scales8 = const uint8_t*;
    static Scales8 scales8(const uint8_t* sc) { return sc; }
    static W scales_32x2(Scales8 sc, int k) { return {_mm256_set1_epi16(sc[k]), _mm256_set1_epi16(sc[k + 1])}; }
    // Four sub-blocks of 16 from the 16 signed scales of a Q6_K super-block (k .. k + 3):
    using Scales16 = const int8_t*;
    static Scales16 scales16(const int8_t* sc, __m128i) { return sc; }
    static W scales_16x4(Scales16 sc, int k) { return scales_16x4(sc[k], sc[k + 1], sc[k + 2], sc[k + 3]); }
};

}  // namespace
}  // namespace quant
