// The tile kernels' activation quantizers for AVX2 (compiled with -mavx2 -mfma -mf16c; gemm.cpp uses
// them only where the SIMD level is avx2): q8_activation_simd.inc over simd_avx2.h's vectors.
#include "simd_avx2.h"

#define QUANT_LEVEL(name) name##_avx2
#include "q8_activation_simd.inc"
