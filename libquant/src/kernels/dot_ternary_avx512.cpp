// AVX-512 (F + BW) dot products of the ternary formats (TQ1_0, TQ2_0) with Q8_K activations: 64 trits
// per register, the trit thresholds as byte masks. Compiled with -mavx512f -mavx512bw -mavx2 -mfma
// -mf16c; only reached after runtime detection. See dot_ternary_avx2.cpp for the arithmetic.
#include <cstring>

#include "dot_x86_512.h"
#include "iq_blocks.h"
#include "iq_dot.h"

namespace quant {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m256i times3(__m256i v) { return _mm256_add_epi8(_mm256_add_epi8(v, v), v); }
inline __m128i times3(__m128i v) { return _mm_add_epi8(_mm_add_epi8(v, v), v); }

inline __m512i leading_trits(__m512i v) {
    const __m512i one = _mm512_set1_epi8(1);
    return _mm512_add_epi8(_mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(86)), one),
                           _mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(static_cast<char>(171))), one));
}

inline __m512i dot_u8_i8(__m512i u, __m512i s) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

// The -1 offset of every trit: minus the activation sums, spread over the low eight int32 lanes.
inline __m512i minus_block_sums(const BlockQ8_K& y) {
    return _mm512_maskz_cvtepi16_epi32(0xffff, _mm256_sub_epi16(_mm256_setzero_si256(), load256(y.bsums)));
}

}  // namespace

float dot_tq2_0_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockTQ2_0*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m512i sumi = minus_block_sums(y[b]);
        const __m512i q = _mm512_loadu_si512(x[b].qs);  // bytes 0-31: elements 0-127, 32-63: 128-255
        for (int l = 0; l < 4; ++l) {
            const __m512i t = _mm512_and_si512(_mm512_srli_epi16(q, 2 * l), m3);
            const __m512i av = join(load256(y[b].qs + 32 * l), load256(y[b].qs + 128 + 32 * l));
            sumi = _mm512_add_epi32(sumi, dot_u8_i8(t, av));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), to_float(sumi), acc);
    }
    return hsum(acc);
}

float dot_tq1_0_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockTQ1_0*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const __m256i v0 = load256(x[b].qs), v1 = times3(v0), v2 = times3(v1), v3 = times3(v2), v4 = times3(v3);
        const __m128i p0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 32));
        const __m128i p1 = times3(p0), p2 = times3(p1), p3 = times3(p2), p4 = times3(p3);
        uint32_t qh;
        std::memcpy(&qh, x[b].qh, 4);
        const __m128i h0 = _mm_set1_epi32(static_cast<int>(qh));
        const __m128i h1 = times3(h0), h2 = times3(h1), h3 = times3(h2);
        const __m128i hq = _mm_blend_epi32(_mm_blend_epi32(_mm_blend_epi32(h0, h1, 0x2), h2, 0x4), h3, 0x8);
        // Elements 0-63, 64-127, 128-191 (bulk trit 4, then the tail's trits 0 and 1), 192-255.
        const __m512i runs[4] = {join(v0, v1), join(v2, v3), join(v4, _mm256_set_m128i(p1, p0)),
                                 join(_mm256_set_m128i(p3, p2), _mm256_set_m128i(hq, p4))};
        __m512i sumi = minus_block_sums(y[b]);
        for (int k = 0; k < 4; ++k) {
            sumi = _mm512_add_epi32(sumi, dot_u8_i8(leading_trits(runs[k]), _mm512_loadu_si512(y[b].qs + 64 * k)));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), to_float(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace quant
