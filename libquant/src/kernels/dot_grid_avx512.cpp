// AVX-512 (F + BW) dot products of the grid formats with Q8_K activations: two 32-element runs per
// 512-bit register, the signs of IQ2/IQ3 applied to the activations as a 64-bit mask straight from the
// sign bytes. Compiled with -mavx512f -mavx512bw -mavx2 -mfma -mf16c; only reached after runtime
// detection. See dot_grid_avx2.cpp for the arithmetic.
#include "dot_x86_512.h"
#include "grid_runs.h"
#include "iq_dot.h"

namespace quant {
namespace {

inline __m512i points(const uint64_t* lo, const uint64_t* hi) {
    const auto q = [](uint64_t v) { return static_cast<int64_t>(v); };
    return _mm512_set_epi64(q(hi[3]), q(hi[2]), q(hi[1]), q(hi[0]), q(lo[3]), q(lo[2]), q(lo[1]), q(lo[0]));
}

// int16 multipliers of the four 16-element halves, as int32 lanes holding two copies each.
template <class Run>
inline __m512i scales(const Run& r0, const Run& r1) {
    const auto p = [](int s) { return s * 0x10001; };
    const int a = p(r0.scale[0]), b = p(r0.scale[1]), c = p(r1.scale[0]), d = p(r1.scale[1]);
    return _mm512_set_epi32(d, d, d, d, c, c, c, c, b, b, b, b, a, a, a, a);
}

inline __m512i negate_where(__m512i v, __mmask64 neg) { return _mm512_mask_sub_epi8(v, neg, _mm512_setzero_si512(), v); }

// Sixteen int32 sums of scale * weight * activation over two consecutive runs.
inline __m512i dot_runs2(const SignedRun& r0, const SignedRun& r1, const int8_t* a) {
    const __mmask64 neg = r0.neg | static_cast<uint64_t>(r1.neg) << 32;
    const __m512i signed_a = negate_where(_mm512_loadu_si512(a), neg);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(points(r0.grid, r1.grid), signed_a), scales(r0, r1));
}

inline __m512i dot_runs2(const ShiftedRun& r0, const ShiftedRun& r1, const int8_t* a) {
    const __m512i up = _mm512_slli_epi16(_mm512_add_epi8(points(r0.grid, r1.grid), _mm512_set1_epi8(1)), 3);
    const __m512i w = _mm512_add_epi8(up, points(r0.offset, r1.offset));
    const __m512i signed_a = negate_where(_mm512_loadu_si512(a), _mm512_movepi8_mask(w));
    return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(w), signed_a), scales(r0, r1));
}

template <class Block, class Scale, class Run>
float dot_runs(int64_t n, const void* w, const void* a, Scale scale, Run run) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m512i sumi = _mm512_setzero_si512();
        for (int ib = 0; ib < kQKK / 32; ib += 2) {
            sumi = _mm512_add_epi32(sumi, dot_runs2(run(x[b], ib), run(x[b], ib + 1), y[b].qs + 32 * ib));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(scale(x[b]) * y[b].d), to_float(sumi), acc);
    }
    return hsum(acc);
}

template <class Block>
float eighth_of_d(const Block& x) { return _cvtsh_ss(x.d) * 0.125f; }

}  // namespace

float dot_iq2_xxs_q8_k_avx512(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ2XXS>(n, w, a, eighth_of_d<BlockIQ2XXS>, run_iq2_xxs);
}

float dot_iq2_xs_q8_k_avx512(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ2XS>(n, w, a, eighth_of_d<BlockIQ2XS>, run_iq2_xs);
}

float dot_iq2_s_q8_k_avx512(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ2S>(n, w, a, eighth_of_d<BlockIQ2S>, run_iq2_s);
}

float dot_iq3_xxs_q8_k_avx512(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ3XXS>(n, w, a, [](const BlockIQ3XXS& x) { return _cvtsh_ss(x.d) * 0.25f; }, run_iq3_xxs);
}

float dot_iq3_s_q8_k_avx512(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ3S>(n, w, a, [](const BlockIQ3S& x) { return _cvtsh_ss(x.d); }, run_iq3_s);
}

float dot_iq1_s_q8_k_avx512(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ1S>(n, w, a, eighth_of_d<BlockIQ1S>, run_iq1_s);
}

float dot_iq1_m_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ1M*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        uint16_t sc[4];
        const float d = _cvtsh_ss(iq1_m_scale(x[b], sc));
        __m512i sumi = _mm512_setzero_si512();
        for (int ib = 0; ib < kQKK / 32; ib += 2) {
            sumi = _mm512_add_epi32(sumi, dot_runs2(run_iq1_m(x[b], sc, ib), run_iq1_m(x[b], sc, ib + 1), y[b].qs + 32 * ib));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d * 0.125f * y[b].d), to_float(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace quant
