// The tile kernels' activation quantizers for AVX-512 (compiled with -mavx512f -mavx512bw plus the AVX2
// set; gemm.cpp uses them only at that level): q8_activation_simd.inc over simd_avx512.h's vectors.
#include "simd_avx512.h"

#define QUANT_LEVEL(name) name##_avx512
#include "q8_activation_simd.inc"
