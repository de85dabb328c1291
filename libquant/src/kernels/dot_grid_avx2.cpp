// AVX2 dot products of the grid formats (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) with Q8_K
// activations. Compiled with -mavx2 -mfma -mf16c; only reached when the CPU has them (registry.cpp).
//
// A 32-element run's four grid points go into one register as they are. IQ2/IQ3 coordinates are
// unsigned, so their signs move onto the activations and maddubs multiplies directly; IQ1 weights
// 8 g +- 1 are signed and take the usual sign transfer. The int16 pair sums are multiplied by the
// run's two 16-element scales in the same madd. |products| stay below 2^15: 62 * 127 * 2 at most.
#include "dot_x86.h"
#include "grid_runs.h"
#include "iq_dot.h"

namespace quant {
namespace {

inline __m256i points(const uint64_t* grid) {
    return _mm256_set_epi64x(static_cast<int64_t>(grid[3]), static_cast<int64_t>(grid[2]),
                             static_cast<int64_t>(grid[1]), static_cast<int64_t>(grid[0]));
}

// 0xFF in byte i where bit i of mask is set.
inline __m256i mask_bytes(uint32_t mask) {
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(mask)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// Eight int32 sums of scale * weight * activation over one run.
inline __m256i dot_run(const SignedRun& r, const int8_t* a) {
    const __m256i m = mask_bytes(r.neg);
    const __m256i signed_a = _mm256_sub_epi8(_mm256_xor_si256(load(a), m), m);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(points(r.grid), signed_a), scale_pair(r.scale[0], r.scale[1]));
}

inline __m256i dot_run(const ShiftedRun& r, const int8_t* a) {
    // 8 (g + 1) fits a byte, so the 16-bit shift moves nothing across bytes.
    const __m256i up = _mm256_slli_epi16(_mm256_add_epi8(points(r.grid), _mm256_set1_epi8(1)), 3);
    const __m256i w = _mm256_add_epi8(up, points(r.offset));
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(load(a), w));
    return _mm256_madd_epi16(p16, scale_pair(r.scale[0], r.scale[1]));
}

// The super-block loop every format shares: scale(block) is the fp16 super-scale times the format's
// constant factor, run(block, ib) decodes run ib.
template <class Block, class Scale, class Run>
float dot_runs(int64_t n, const void* w, const void* a, Scale scale, Run run) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < kQKK / 32; ++ib) sumi = _mm256_add_epi32(sumi, dot_run(run(x[b], ib), y[b].qs + 32 * ib));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale(x[b]) * y[b].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

template <class Block>
float eighth_of_d(const Block& x) { return fp16(x.d) * 0.125f; }

}  // namespace

float dot_iq2_xxs_q8_k_avx2(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ2XXS>(n, w, a, eighth_of_d<BlockIQ2XXS>, run_iq2_xxs);
}

float dot_iq2_xs_q8_k_avx2(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ2XS>(n, w, a, eighth_of_d<BlockIQ2XS>, run_iq2_xs);
}

float dot_iq2_s_q8_k_avx2(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ2S>(n, w, a, eighth_of_d<BlockIQ2S>, run_iq2_s);
}

float dot_iq3_xxs_q8_k_avx2(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ3XXS>(n, w, a, [](const BlockIQ3XXS& x) { return fp16(x.d) * 0.25f; }, run_iq3_xxs);
}

float dot_iq3_s_q8_k_avx2(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ3S>(n, w, a, [](const BlockIQ3S& x) { return fp16(x.d); }, run_iq3_s);
}

float dot_iq1_s_q8_k_avx2(int64_t n, const void* w, const void* a) {
    return dot_runs<BlockIQ1S>(n, w, a, eighth_of_d<BlockIQ1S>, run_iq1_s);
}

float dot_iq1_m_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ1M*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
        uint16_t sc[4];
        const float d = _cvtsh_ss(iq1_m_scale(x[b], sc));
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < kQKK / 32; ++ib) sumi = _mm256_add_epi32(sumi, dot_run(run_iq1_m(x[b], sc, ib), y[b].qs + 32 * ib));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * 0.125f * y[b].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace quant
