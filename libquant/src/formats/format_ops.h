// How one ggml type is converted, quantized and dotted: the row functions each format file provides.
#pragma once

#include <cstdint>

#include "quant/quant.h"

namespace quant {

struct FormatOps {
    GgmlType type;
    // n is a multiple of the block size.
    void (*dequantize)(const void* src, float* dst, int64_t n) = nullptr;
    // One row; imatrix may be null. Must be deterministic and thread-safe.
    void (*quantize)(const float* src, void* dst, int64_t n, const float* imatrix) = nullptr;
    bool needs_imatrix = false;
    GgmlType dot_type = GgmlType::F32;
    // Dot of a weight row with an activation row of dot_type, per SIMD level (null: use scalar).
    float (*dot_scalar)(int64_t n, const void* w, const void* a) = nullptr;
    float (*dot_avx2)(int64_t n, const void* w, const void* a) = nullptr;
    float (*dot_avx512)(int64_t n, const void* w, const void* a) = nullptr;
};

// The ops for a type, or null when libquant does not handle it.
const FormatOps* find_format(GgmlType type);

}  // namespace quant
