// The float, legacy and K-quant dot products for AVX-512 (compiled with -mavx512f -mavx512bw plus the
// AVX2 set; registry.cpp calls them only on CPUs with F and BW): dot_simd.inc over simd_avx512.h's.
#include "simd_avx512.h"

#define QUANT_LEVEL(name) name##_avx512
#include "dot_simd.inc"
