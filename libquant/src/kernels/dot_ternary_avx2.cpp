// The ternary dot products (TQ1_0, TQ2_0) for AVX2 (compiled with -mavx2 -mfma -mf16c; only reached
// when the CPU has them, registry.cpp): dot_ternary_simd.inc over simd_avx2.h's vectors.
#include "simd_avx2.h"

#define QUANT_LEVEL(name) name##_avx2
#include "dot_ternary_simd.inc"
