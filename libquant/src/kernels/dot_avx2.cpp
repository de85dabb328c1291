// The float, legacy and K-quant dot products for AVX2 (this file is compiled with -mavx2 -mfma -mf16c;
// registry.cpp calls them only on CPUs that have those): dot_simd.inc over simd_avx2.h's vectors.
#include "simd_avx2.h"

#define QUANT_LEVEL(name) name##_avx2
#include "dot_simd.inc"
