// FormatOps: how one ggml type is converted, quantized and dotted — the row functions each codec file of
// formats/ provides — and the table entries those files define, which registry.cpp lists.
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

// One per format; defined beside its codec (float_formats.cpp, legacy_quants.cpp, k_quants.cpp, ...).
extern const FormatOps kF32Ops;
extern const FormatOps kF16Ops;
extern const FormatOps kBF16Ops;
extern const FormatOps kQ4_0Ops;
extern const FormatOps kQ4_1Ops;
extern const FormatOps kQ5_0Ops;
extern const FormatOps kQ5_1Ops;
extern const FormatOps kQ8_0Ops;
extern const FormatOps kQ2_KOps;
extern const FormatOps kQ3_KOps;
extern const FormatOps kQ4_KOps;
extern const FormatOps kQ5_KOps;
extern const FormatOps kQ6_KOps;
extern const FormatOps kQ8_KOps;
extern const FormatOps kIQ4_NLOps;
extern const FormatOps kIQ4_XSOps;
extern const FormatOps kMXFP4Ops;
extern const FormatOps kTQ1_0Ops;
extern const FormatOps kTQ2_0Ops;
extern const FormatOps kIQ2_XXSOps;
extern const FormatOps kIQ2_XSOps;
extern const FormatOps kIQ2_SOps;
extern const FormatOps kIQ3_XXSOps;
extern const FormatOps kIQ3_SOps;
extern const FormatOps kIQ1_SOps;
extern const FormatOps kIQ1_MOps;

// Q8_0 as an activation (q8_activation.cpp): rounded as ggml's x86 CPU backend rounds the activations
// of its Q8_0 dot products, which is not how its reference weight quantizer (kQ8_0Ops.quantize) rounds.
void q8_0_activation_quantize(const float* x, void* dst, int64_t n);

}  // namespace quant
