// The tile kernels behind quant::gemm_function and the activation quantizers behind
// quant::quantize_activations, compiled per instruction set (gemm_avx2.cpp, gemm_avx512.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace quant {

void gemm_q8_0_q8_0_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q8_0_q8_0_avx512vnni(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_0_q8_0_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_0_q8_0_avx512vnni(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q5_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q6_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);

void gemm_q8_0_q8_0_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_0_q8_0_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q5_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q6_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);

// Bit-exact with the reference activation quantizers (quantize_activation_row).
void quantize_q8_0_avx512(const float* x, void* dst, int64_t n);
void quantize_q8_k_avx512(const float* x, void* dst, int64_t n);
void quantize_q8_0_avx2(const float* x, void* dst, int64_t n);
void quantize_q8_k_avx2(const float* x, void* dst, int64_t n);

}  // namespace quant
