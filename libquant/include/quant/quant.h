// Block quantization: the one entry point for converting, quantizing, dequantizing and dotting rows
// of any ggml type. Layouts are ggml's, so bytes produced here are bytes llama.cpp reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "gguf/types.h"

namespace quant {

using gguf::GgmlType;

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// What libquant can do with a type.
bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);
bool requires_imatrix(GgmlType type);  // the IQ1/IQ2 family: ggml refuses them without one

// n elements (a multiple of the block size) from `src` blocks to f32.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Quantizes `n_rows` rows of `n_per_row` floats into `dst` (row_size(type, n_per_row) bytes a row).
// `imatrix`, when not null, holds n_per_row importance weights (sums of squared activations).
// Rows are spread over OpenMP threads; the result does not depend on the thread count.
// Non-finite input throws quant::Error naming the row. Returns the bytes written.
size_t quantize_rows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                     const float* imatrix = nullptr);

// Dot products: a weight row of type `type` times an activation row quantized to
// vec_dot_type(type) (Q8_0 for the 32-blocks, Q8_K for the 256-blocks, F32/F16/BF16 for themselves).
// quantize_activation_row rounds as ggml's x86 CPU backend rounds activations, which for Q8_0 is not
// quantize_rows' (ggml's reference, as llama-quantize writes weights).
GgmlType vec_dot_type(GgmlType type);
void quantize_activation_row(GgmlType act_type, const float* src, void* dst, int64_t n);
float vec_dot(GgmlType type, int64_t n, const void* weight_row, const void* act_row);

// The kernel vec_dot would call for `type` on this CPU, resolved once: hot loops call it directly
// instead of looking the format up per row. Throws quant::Error when the type has no dot product.
using DotFn = float (*)(int64_t n, const void* weight_row, const void* act_row);
DotFn dot_function(GgmlType type);

// The SIMD level vec_dot uses on this CPU ("avx512", "avx2" or "scalar"); GGUF_SIMD=scalar|avx2
// in the environment caps it (tests compare levels).
const char* simd_level();

}  // namespace quant
