// F32, F16 and BF16 rows: conversions with ggml's rounding, and their dot products.
#include <cstring>

#include "dot_kernels.h"
#include "format_ops.h"
#include "quant/float16.h"

namespace quant {
namespace {

void f32_dequantize(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }
void f32_quantize(const float* src, void* dst, int64_t n, const float*) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}
float f32_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    double s = 0;  // accumulate wide: this is the reference the SIMD paths are checked against
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
    return static_cast<float>(s);
}

void f16_dequantize(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void f16_quantize(const float* src, void* dst, int64_t n, const float*) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
float f16_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(f16_to_f32(x[i])) * f16_to_f32(y[i]);
    return static_cast<float>(s);
}

void bf16_dequantize(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void bf16_quantize(const float* src, void* dst, int64_t n, const float*) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}
float bf16_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_f32(x[i])) * bf16_to_f32(y[i]);
    return static_cast<float>(s);
}

}  // namespace

const FormatOps kF32Ops{GgmlType::F32, f32_dequantize, f32_quantize, false, GgmlType::F32, f32_dot,
                       dot_f32_avx2, dot_f32_avx512};
const FormatOps kF16Ops{GgmlType::F16, f16_dequantize, f16_quantize, false, GgmlType::F16, f16_dot,
                       dot_f16_avx2, dot_f16_avx512};
const FormatOps kBF16Ops{GgmlType::BF16, bf16_dequantize, bf16_quantize, false, GgmlType::BF16, bf16_dot,
                        dot_bf16_avx2, dot_bf16_avx512};

}  // namespace quant
