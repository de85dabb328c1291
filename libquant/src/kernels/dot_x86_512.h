// 512-bit helpers shared by the AVX-512 kernel files (each compiled with -mavx512f -mavx512bw). As in
// dot_x86.h they live in an unnamed namespace: one private copy per file, never merged by the linker
// into a file built for a smaller instruction set.
#pragma once

#include "x86_intrinsics.h"

namespace quant {
namespace {

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

inline __m512i join(__m256i lo, __m256i hi) {
    return _mm512_maskz_inserti64x4(0xff, _mm512_castsi256_si512(lo), hi, 1);
}

inline __m512 to_float(__m512i v) { return _mm512_maskz_cvtepi32_ps(0xffff, v); }

inline float hsum(__m512 v) {
    const __m512d vd = _mm512_castps_pd(v);
    const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, vd, 0));
    const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, vd, 1));
    const __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace quant
