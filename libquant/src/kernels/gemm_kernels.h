// The tile kernels behind quant::gemm_function (gemm_avx2.cpp, gemm_avx512.cpp) and the activation
// quantizers behind quant::quantize_activations (q8_activation_simd.inc, once per instruction set).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace quant {

void gemm_q8_0_q8_0_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q8_0_q8_0_avx512vnni(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_0_q8_0_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_0_q8_0_avx512vnni(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q2_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q3_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q5_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q6_k_q8_k_avx512(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);

void gemm_q8_0_q8_0_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_0_q8_0_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q2_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q3_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q4_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q5_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);
void gemm_q6_k_q8_k_avx2(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);

// Calls tile(std::integral_constant<int, NC>) for the tile's column count nc (1..kGemmCols), so each
// kernel is compiled with NC a constant: `by_columns(nc, [&](auto c) { q8_0_tile<c>(...); })`.
template <class Tile>
inline void by_columns(int nc, Tile&& tile) {
    switch (nc) {
        case 1: tile(std::integral_constant<int, 1>{}); break;
        case 2: tile(std::integral_constant<int, 2>{}); break;
        case 3: tile(std::integral_constant<int, 3>{}); break;
        default: tile(std::integral_constant<int, 4>{}); break;
    }
}

// Bit-exact with the reference activation quantizers (quantize_activation_row).
void quantize_q8_0_avx512(const float* x, void* dst, int64_t n);
void quantize_q8_k_avx512(const float* x, void* dst, int64_t n);
void quantize_q8_0_avx2(const float* x, void* dst, int64_t n);
void quantize_q8_k_avx2(const float* x, void* dst, int64_t n);

}  // namespace quant
