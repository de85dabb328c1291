// The vector vocabulary of the kernels written once for both instruction sets (dot_simd.inc), in its
// AVX-512 (F and BW) form: 16 floats, two 32-blocks of bytes per integer vector, one register per
// 64-byte vector. Included only by files compiled with -mavx512f -mavx512bw; an unnamed namespace
// keeps its code out of files of another level (dot_x86.h).
#pragma once

#include "dot_x86.h"
#include "dot_x86_512.h"

namespace quant {
namespace {

struct Simd {
    // --- floats
    using F = __m512;
    static constexpr int kFloats = 16;
    static F fzero() { return _mm512_setzero_ps(); }
    static F fadd(F a, F b) { return _mm512_add_ps(a, b); }
    static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static float reduce(F v) { return _mm512_reduce_add_ps(v); }
    static F load_f32(const float* p) { return _mm512_loadu_ps(p); }
    static F load_f16(const uint16_t* p) { return _mm512_cvtph_ps(load(p)); }
    static F load_bf16(const uint16_t* p) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load(p)), 16)); }

    // --- 32-blocks: kBlocks blocks per integer vector I
    using I = __m512i;
    static constexpr int kBlocks = 2;
    template <typename Block, typename Bytes>
    static I blocks(const Block* x, Bytes bytes) { return join(bytes(x[0]), bytes(x[1])); }
    static I ones8() { return _mm512_set1_epi8(1); }
    static I dot_u8_i8(I u, I s) { return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)); }
    // No vpsignb in AVX-512: |w| times a negated under the mask of negative w (|a| <= 127 keeps that exact).
    static I dot_i8_i8(I w, I a) {
        const __mmask64 negative = _mm512_movepi8_mask(w);
        return dot_u8_i8(_mm512_abs_epi8(w), _mm512_mask_sub_epi8(a, negative, _mm512_setzero_si512(), a));
    }
    static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
    // block k's scale in lanes 8k .. 8k + 7: the layout of a joined pair's sums
    static F block_scales(const float* s) { return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s[0]), _mm512_set1_ps(s[1])); }

    // --- 64-byte vectors (a quarter of a K-quant super-block)
    using W = __m512i;
    static W wzero() { return _mm512_setzero_si512(); }
    static W join(__m256i lo, __m256i hi) { return quant::join(lo, hi); }
    static W load64(const void* p) { return load512(p); }
    static W set8(char v) { return _mm512_set1_epi8(v); }
    static W and_(W a, W b) { return _mm512_and_si512(a, b); }
    static W or_(W a, W b) { return _mm512_or_si512(a, b); }
    static W srli16(W a, int k) { return _mm512_srli_epi16(a, k); }
    static W add32(W a, W b) { return _mm512_add_epi32(a, b); }
    static W scaled_dot(W u, W s, W scales) { return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), scales); }
    static __m256i fold(W v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }
    static W set16(int16_t v) { return _mm512_set1_epi16(v); }
    static W bounds_reached(W v, uint8_t a, uint8_t b) {
        const __m512i one = _mm512_set1_epi8(1);
        return _mm512_add_epi8(_mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(static_cast<char>(a))), one),
                               _mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(static_cast<char>(b))), one));
    }
    // one int32 lane per activation sum
    static W minus_block_sums(const BlockQ8_K& y) {
        return _mm512_maskz_cvtepi16_epi32(0xffff, _mm256_sub_epi16(_mm256_setzero_si256(), load(y.bsums)));
    }
    // 16 lanes: the integer sums need no folding
    using WAcc = __m512;
    static WAcc wacc_zero() { return _mm512_setzero_ps(); }
    static WAcc wacc_add(WAcc acc, float d, W sumi) { return _mm512_fmadd_ps(_mm512_set1_ps(d), to_float(sumi), acc); }
    static float wacc_sum(WAcc acc) { return hsum(acc); }

    // --- 16 floats, and 16 int32 made from them (the activation quantizers): one register each
    using F16 = __m512;
    using I16 = __m512i;
    static F16 load16(const float* p) { return _mm512_loadu_ps(p); }
    static F16 zero16() { return _mm512_setzero_ps(); }
    static F16 abs16(F16 v) { return _mm512_abs_ps(v); }
    static F16 max16(F16 a, F16 b) { return _mm512_max_ps(a, b); }
    static F16 mul16(F16 v, float s) { return _mm512_mul_ps(v, _mm512_set1_ps(s)); }
    static float reduce_max16(F16 v) { return _mm512_reduce_max_ps(v); }
    static unsigned equal_mask16(F16 v, float x) { return _mm512_cmp_ps_mask(v, _mm512_set1_ps(x), _CMP_EQ_OQ); }
    static I16 round_even16(F16 v) { return _mm512_cvtps_epi32(v); }
    static I16 min16(I16 v, int limit) { return _mm512_min_epi32(v, _mm512_set1_epi32(limit)); }
    static void store_bytes16(int8_t* dst, I16 v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(v)); }
    static int sum16(I16 v) { return _mm512_reduce_add_epi32(v); }

    static W scales_16x4(int s0, int s1, int s2, int s3) { return join(scale_pair(s0, s1), scale_pair(s2, s3)); }
    // Table forms: the scales widened to int16 once per super-block, then one vpermw per 64 elements
    // instead of broadcasts of scalars.
    using Scales8 = __m512i;
    static Scales8 scales8(const uint8_t* sc) {
        int64_t sc8;
        std::memcpy(&sc8, sc, 8);
        return _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc8)));
    }
    // scale k in the low 256 bits, k + 1 in the high
    static W scales_32x2(Scales8 sc, int k) {
        const __m512i index = join(_mm256_set1_epi16(static_cast<int16_t>(k)), _mm256_set1_epi16(static_cast<int16_t>(k + 1)));
        return _mm512_permutexvar_epi16(index, sc);
    }
    using Scales16 = __m512i;
    static Scales16 scales16(const int8_t*, __m128i sc8) { return _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(sc8)); }
    // scale k + q in the q-th 128 bits
    static W scales_16x4(Scales16 sc, int k) {
        const __m512i index = join(_mm256_set_m128i(_mm_set1_epi16(1), _mm_set1_epi16(0)),
                                   _mm256_set_m128i(_mm_set1_epi16(3), _mm_set1_epi16(2)));
        return _mm512_permutexvar_epi16(_mm512_add_epi16(index, _mm512_set1_epi16(static_cast<int16_t>(k))), sc);
    }
};

}  // namespace
}  // namespace quant
