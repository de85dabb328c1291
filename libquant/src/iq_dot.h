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

}  // namespace quant
