// Tiles of a batched matmul with block-quantized weights: kGemmRows weight rows times up to kGemmCols
// activation rows (quantized to vec_dot_type(type)) per call. Each weight block is loaded and unpacked
// once per tile and reused for every activation row, which is what prompt processing needs; one
// activation row per call is also fine (decode), the unpacking then costs what vec_dot's does.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace quant {

inline constexpr int kGemmRows = 4;
inline constexpr int kGemmCols = 4;

// out[r * kGemmCols + c] = vec_dot(type, n, w + r * w_stride, a[c]) for r < kGemmRows, c < nc
// (1 <= nc <= kGemmCols), up to the rounding of the float accumulation.
using GemmFn = void (*)(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out);

// The tile kernel for weights of `type` on this CPU, or nullptr when there is none (the caller then
// uses dot_function per row). Today: Q4_0, Q8_0 and Q2_K-Q6_K with AVX-512 (F and BW; Q4_0 and Q8_0
// use VNNI where the CPU has it) or, where simd_level() is "avx2", with AVX2.
GemmFn gemm_function(gguf::GgmlType type);

// quantize_activation_row, bit for bit, with AVX-512 or AVX2 for Q8_0 and Q8_K (the activation types of the
// tile kernels): a batched matmul quantizes every activation row once.
void quantize_activations(gguf::GgmlType act_type, const float* src, void* dst, int64_t n);

}  // namespace quant
