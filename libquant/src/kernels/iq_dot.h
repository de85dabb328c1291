// Dot products of the IQ / MXFP4 / TQ weight rows with their activation rows (Q8_0 or Q8_K), one set per
// SIMD level. The scalar ones are the reference the others are tested against; the AVX2 and AVX-512
// ones live in files compiled with those instruction sets and are only called after runtime detection.
#pragma once

#include <cstdint>

namespace quant {

float dot_iq4_nl_q8_0_scalar(int64_t n, const void* w, const void* a);
float dot_iq4_xs_q8_k_scalar(int64_t n, const void* w, const void* a);
float dot_mxfp4_q8_0_scalar(int64_t n, const void* w, const void* a);

float dot_iq4_nl_q8_0_avx2(int64_t n, const void* w, const void* a);
float dot_iq4_xs_q8_k_avx2(int64_t n, const void* w, const void* a);
float dot_mxfp4_q8_0_avx2(int64_t n, const void* w, const void* a);

float dot_iq4_nl_q8_0_avx512(int64_t n, const void* w, const void* a);
float dot_iq4_xs_q8_k_avx512(int64_t n, const void* w, const void* a);
float dot_mxfp4_q8_0_avx512(int64_t n, const void* w, const void* a);

// The grid formats (IQ1_S ... IQ3_S) and the ternary ones against Q8_K, in integer arithmetic per
// super-block: the scalar references sit in the format files, the SIMD ones in dot_grid_* and
// dot_ternary_*.
#define QUANT_LOW_BIT_DOT_KERNELS(level)                                     \
    float dot_iq1_s_q8_k_##level(int64_t n, const void* w, const void* a);   \
    float dot_iq1_m_q8_k_##level(int64_t n, const void* w, const void* a);   \
    float dot_iq2_xxs_q8_k_##level(int64_t n, const void* w, const void* a); \
    float dot_iq2_xs_q8_k_##level(int64_t n, const void* w, const void* a);  \
    float dot_iq2_s_q8_k_##level(int64_t n, const void* w, const void* a);   \
    float dot_iq3_xxs_q8_k_##level(int64_t n, const void* w, const void* a); \
    float dot_iq3_s_q8_k_##level(int64_t n, const void* w, const void* a);   \
    float dot_tq1_0_q8_k_##level(int64_t n, const void* w, const void* a);   \
    float dot_tq2_0_q8_k_##level(int64_t n, const void* w, const void* a);

QUANT_LOW_BIT_DOT_KERNELS(scalar)
QUANT_LOW_BIT_DOT_KERNELS(avx2)
QUANT_LOW_BIT_DOT_KERNELS(avx512)

#undef QUANT_LOW_BIT_DOT_KERNELS

}  // namespace quant
