// AVX-512 (F + BW) dot products of the 4-bit table formats (IQ4_NL, IQ4_XS, MXFP4) with Q8 activations:
// two 32-blocks per 512-bit register, each half carrying its own block scale. Compiled with
// -mavx512f -mavx512bw -mavx2 -mfma -mf16c; only reached after runtime detection.
#include "dot_x86_512.h"
#include "iq_blocks.h"
#include "iq_dot.h"

namespace quant {
namespace {

// Levels of two 32-blocks: 128-bit lanes hold (block0 lo, block0 hi, block1 lo, block1 hi), matching
// the element order of two consecutive activation blocks.
inline __m512i levels64(__m512i table, const uint8_t* qs0, const uint8_t* qs1) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1));
    const __m256i i0 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q0, 4), m4), _mm_and_si128(q0, m4));
    const __m256i i1 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q1, 4), m4), _mm_and_si128(q1, m4));
    return _mm512_shuffle_epi8(table, join(i0, i1));
}

// Sixteen int32 partial sums (eight per block) of w[i] * a[i]. AVX-512 has no sign_epi8, so the sign
// of w moves onto a with a masked negation before maddubs (|w| unsigned times signed a).
inline __m512i dot64(__m512i w, const int8_t* a0, const int8_t* a1) {
    const __m512i av = join(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a0)),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a1)));
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const __m512i signed_a = _mm512_mask_sub_epi8(av, neg, _mm512_setzero_si512(), av);
    const __m512i p16 = _mm512_maddubs_epi16(_mm512_abs_epi8(w), signed_a);
    return _mm512_madd_epi16(p16, _mm512_set1_epi16(1));
}

inline __m512 two_scales(float d0, float d1) {
    return _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
}

inline __m512i load_table(const int8_t* values) {
    return _mm512_maskz_broadcast_i32x4(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(values)));
}

// IQ4_NL and MXFP4 share everything but the table and where the block scale comes from. An odd last
// block is paired with itself at scale zero rather than reading past the row.
template <class Block, class Scale>
float dot_table32(int64_t n, const Block* x, const BlockQ8_0* y, const int8_t* values, Scale scale) {
    const __m512i table = load_table(values);
    __m512 acc = _mm512_setzero_ps();
    const int64_t nb = n / kQK;
    for (int64_t b = 0; b < nb; b += 2) {
        const bool pair = b + 1 < nb;
        const int64_t b1 = pair ? b + 1 : b;
        const __m512i s = dot64(levels64(table, x[b].qs, x[b1].qs), y[b].qs, y[b1].qs);
        const __m512 d = two_scales(scale(x[b]) * _cvtsh_ss(y[b].d), pair ? scale(x[b1]) * _cvtsh_ss(y[b1].d) : 0.f);
        acc = _mm512_fmadd_ps(d, to_float(s), acc);
    }
    return hsum(acc);
}

}  // namespace

float dot_iq4_nl_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return dot_table32(n, static_cast<const BlockIQ4NL*>(w), static_cast<const BlockQ8_0*>(a), kValuesIQ4NL,
                       [](const BlockIQ4NL& b) { return _cvtsh_ss(b.d); });
}

float dot_mxfp4_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return dot_table32(n, static_cast<const BlockMXFP4*>(w), static_cast<const BlockQ8_0*>(a), kValuesMXFP4,
                       [](const BlockMXFP4& b) { return e8m0_to_f32_half(b.e); });
}

float dot_iq4_xs_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4XS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m512i table = load_table(kValuesIQ4NL);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m512i sumi = _mm512_setzero_si512();
        for (int ib = 0; ib < kQKK / kQK; ib += 2) {
            // Scales of blocks ib and ib + 1: the low nibbles of one byte, two high bits each.
            const int l0 = (x[b].scales_l[ib / 2] & 0xf) | ((x[b].scales_h >> 2 * ib) & 3) << 4;
            const int l1 = (x[b].scales_l[ib / 2] >> 4) | ((x[b].scales_h >> 2 * (ib + 1)) & 3) << 4;
            const __m512i s = dot64(levels64(table, x[b].qs + 16 * ib, x[b].qs + 16 * (ib + 1)),
                                    y[b].qs + kQK * ib, y[b].qs + kQK * (ib + 1));
            const __m512i ls = _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(l0 - 32), _mm512_set1_epi32(l1 - 32));
            sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(s, ls));
        }
        const float d = _cvtsh_ss(x[b].d) * y[b].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), to_float(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace quant
