// AVX2 dot products of the 4-bit table formats (IQ4_NL, IQ4_XS, MXFP4) with Q8 activations.
// Compiled with -mavx2 -mfma -mf16c; only reached when the CPU has them (registry.cpp checks).
//
// A 16-entry int8 table fits one 128-bit lane, so pshufb turns the nibbles of a 32-block straight into
// its signed levels; the int8 x int8 products then go through maddubs with the usual sign transfer
// (|w| as unsigned, a * sign(w) as signed). |w| <= 127 and |a| <= 128, so pair sums cannot saturate.
#include <immintrin.h>

#include "iq_blocks.h"
#include "iq_dot.h"

namespace quant {
namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The 32 levels of one block (16 packed bytes, element j low nibble of byte j, j+16 high nibble).
inline __m256i levels32(__m256i table, const uint8_t* qs) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(q, m4);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
    return _mm256_shuffle_epi8(table, _mm256_set_m128i(hi, lo));
}

// Eight int32 partial sums of w[i] * a[i] over 32 int8 pairs.
inline __m256i dot32(__m256i w, const int8_t* a) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

inline __m256i load_table(const int8_t* values) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values)));
}

}  // namespace

float dot_iq4_nl_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4NL*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    const __m256i table = load_table(kValuesIQ4NL);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQK; ++b) {
        const __m256i s = dot32(levels32(table, x[b].qs), y[b].qs);
        const float d = _cvtsh_ss(x[b].d) * _cvtsh_ss(y[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum(acc);
}

float dot_mxfp4_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockMXFP4*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    const __m256i table = load_table(kValuesMXFP4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQK; ++b) {
        const __m256i s = dot32(levels32(table, x[b].qs), y[b].qs);
        const float d = e8m0_to_f32_half(x[b].e) * _cvtsh_ss(y[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum(acc);
}

float dot_iq4_xs_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4XS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i table = load_table(kValuesIQ4NL);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < kQKK / kQK; ++ib) {
            const int lo = (x[b].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf;
            const int hi = (x[b].scales_h >> 2 * ib) & 3;
            const __m256i s = dot32(levels32(table, x[b].qs + 16 * ib), y[b].qs + kQK * ib);
            sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(s, _mm256_set1_epi32((lo | hi << 4) - 32)));
        }
        const float d = _cvtsh_ss(x[b].d) * y[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace quant
