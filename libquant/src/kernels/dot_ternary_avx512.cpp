// The ternary dot products (TQ1_0, TQ2_0) for AVX-512 (compiled with -mavx512f -mavx512bw plus the
// AVX2 set; only reached after runtime detection): dot_ternary_simd.inc over simd_avx512.h's vectors.
#include "simd_avx512.h"

#define QUANT_LEVEL(name) name##_avx512
#include "dot_ternary_simd.inc"
