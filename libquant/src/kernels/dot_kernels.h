// SIMD dot products of the float, legacy and K-quant weight rows with their activation rows
// (the same type for floats, Q8_0 for the 32-blocks, Q8_K for the K-quants). The scalar references
// sit beside each format; these live in files compiled for their instruction set and are reached
// only through the registry after CPU detection.
#pragma once

#include <cstdint>

namespace quant {

#define QUANT_DOT_KERNELS(level)                                              \
    float dot_f32_##level(int64_t n, const void* w, const void* a);           \
    float dot_f16_##level(int64_t n, const void* w, const void* a);           \
    float dot_bf16_##level(int64_t n, const void* w, const void* a);          \
    float dot_q4_0_q8_0_##level(int64_t n, const void* w, const void* a);     \
    float dot_q4_1_q8_0_##level(int64_t n, const void* w, const void* a);     \
    float dot_q5_0_q8_0_##level(int64_t n, const void* w, const void* a);     \
    float dot_q5_1_q8_0_##level(int64_t n, const void* w, const void* a);     \
    float dot_q8_0_q8_0_##level(int64_t n, const void* w, const void* a);     \
    float dot_q2_k_q8_k_##level(int64_t n, const void* w, const void* a);     \
    float dot_q3_k_q8_k_##level(int64_t n, const void* w, const void* a);     \
    float dot_q4_k_q8_k_##level(int64_t n, const void* w, const void* a);     \
    float dot_q5_k_q8_k_##level(int64_t n, const void* w, const void* a);     \
    float dot_q6_k_q8_k_##level(int64_t n, const void* w, const void* a);

QUANT_DOT_KERNELS(avx2)
QUANT_DOT_KERNELS(avx512)

#undef QUANT_DOT_KERNELS

}  // namespace quant
