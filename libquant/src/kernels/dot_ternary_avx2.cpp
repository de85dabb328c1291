// AVX2 dot products of the ternary formats (TQ1_0, TQ2_0) with Q8_K activations. Compiled with
// -mavx2 -mfma -mf16c; only reached when the CPU has them (registry.cpp).
//
// Trits t (0, 1, 2 for -1, 0, +1) multiply the activations unsigned; the -1 offset is subtracted once
// per super-block through the activation's 16-element sums. TQ1_0 trit n of a byte q is the integer
// part of 3 (3^n q mod 256) / 256, i.e. whether 3^n q mod 256 is at least 86, plus whether it is at
// least 171; 3^n q mod 256 comes from byte-wise additions, so everything stays in bytes.
#include "dot_x86.h"
#include "iq_blocks.h"
#include "iq_dot.h"

namespace quant {
namespace {

inline __m256i times3(__m256i v) { return _mm256_add_epi8(_mm256_add_epi8(v, v), v); }
inline __m128i times3(__m128i v) { return _mm_add_epi8(_mm_add_epi8(v, v), v); }

inline __m256i at_least(__m256i v, char bound) { return _mm256_cmpeq_epi8(_mm256_max_epu8(v, _mm256_set1_epi8(bound)), v); }

// The leading trit of each byte.
inline __m256i leading_trits(__m256i v) {
    return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(at_least(v, 86), at_least(v, static_cast<char>(171))));
}

inline __m256i minus_block_sums(const BlockQ8_K& y) { return _mm256_madd_epi16(load(y.bsums), _mm256_set1_epi16(-1)); }

}  // namespace

float dot_tq2_0_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockTQ2_0*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m256i sumi = minus_block_sums(y[b]);
        for (int h = 0; h < 2; ++h) {
            const __m256i q = load(x[b].qs + 32 * h);
            for (int l = 0; l < 4; ++l) {
                const __m256i t = _mm256_and_si256(_mm256_srli_epi16(q, 2 * l), m3);
                sumi = _mm256_add_epi32(sumi, dot_u8_i8(t, load(y[b].qs + 128 * h + 32 * l)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[b].d) * y[b].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

float dot_tq1_0_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockTQ1_0*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m256i sumi = minus_block_sums(y[b]);
        // qs[0..32): trit n of byte m is element 32 n + m.
        __m256i v = load(x[b].qs);
        for (int t = 0; t < 5; ++t, v = times3(v)) sumi = _mm256_add_epi32(sumi, dot_u8_i8(leading_trits(v), load(y[b].qs + 32 * t)));
        // qs[32..48): trit n of byte m is element 160 + 16 n + m; qh: trit n of byte j is 240 + 4 n + j.
        const __m128i p0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 32));
        const __m128i p1 = times3(p0), p2 = times3(p1), p3 = times3(p2), p4 = times3(p3);
        uint32_t qh;
        std::memcpy(&qh, x[b].qh, 4);
        const __m128i h0 = _mm_set1_epi32(static_cast<int>(qh));
        const __m128i h1 = times3(h0), h2 = times3(h1), h3 = times3(h2);
        const __m128i hq = _mm_blend_epi32(_mm_blend_epi32(_mm_blend_epi32(h0, h1, 0x2), h2, 0x4), h3, 0x8);
        const __m256i tail[3] = {_mm256_set_m128i(p1, p0), _mm256_set_m128i(p3, p2), _mm256_set_m128i(hq, p4)};
        for (int k = 0; k < 3; ++k) sumi = _mm256_add_epi32(sumi, dot_u8_i8(leading_trits(tail[k]), load(y[b].qs + 160 + 32 * k)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[b].d) * y[b].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace quant
