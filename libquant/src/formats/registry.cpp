// The table of formats and the public entry points that dispatch through it.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "format_ops.h"

namespace quant {

namespace {

const FormatOps* const kFormats[] = {
    &kF32Ops,
    &kF16Ops,
    &kBF16Ops,
    &kQ4_0Ops,
    &kQ4_1Ops,
    &kQ5_0Ops,
    &kQ5_1Ops,
    &kQ8_0Ops,
    &kQ2_KOps,
    &kQ3_KOps,
    &kQ4_KOps,
    &kQ5_KOps,
    &kQ6_KOps,
    &kQ8_KOps,
    &kIQ4_NLOps,
    &kIQ4_XSOps,
    &kMXFP4Ops,
    &kTQ1_0Ops,
    &kTQ2_0Ops,
    &kIQ2_XXSOps,
    &kIQ2_XSOps,
    &kIQ2_SOps,
    &kIQ3_XXSOps,
    &kIQ3_SOps,
    &kIQ1_SOps,
    &kIQ1_MOps,
};

const FormatOps& require(GgmlType type, const char* what) {
    const FormatOps* ops = find_format(type);
    if (!ops || (std::strcmp(what, "quantize") == 0 && !ops->quantize) ||
        (std::strcmp(what, "dequantize") == 0 && !ops->dequantize)) {
        throw Error(std::string("cannot ") + what + " type " + std::string(gguf::type_name(type)));
    }
    return *ops;
}

}  // namespace

const FormatOps* find_format(GgmlType type) {
    for (const FormatOps* f : kFormats) {
        if (f->type == type) return f;
    }
    return nullptr;
}

bool can_dequantize(GgmlType type) {
    const FormatOps* f = find_format(type);
    return f && f->dequantize;
}

bool can_quantize(GgmlType type) {
    const FormatOps* f = find_format(type);
    return f && f->quantize;
}

bool requires_imatrix(GgmlType type) {
    const FormatOps* f = find_format(type);
    return f && f->needs_imatrix;
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    const FormatOps& f = require(type, "dequantize");
    f.dequantize(src, dst, n);
}

size_t quantize_rows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                     const float* imatrix) {
    const FormatOps& f = require(type, "quantize");
    if (f.needs_imatrix && !imatrix) {
        throw Error("type " + std::string(gguf::type_name(type)) + " needs an importance matrix");
    }
    const size_t row_bytes = gguf::row_size(type, static_cast<uint64_t>(n_per_row));
    int64_t bad_row = -1;
#pragma omp parallel for schedule(dynamic, 1) reduction(max : bad_row)
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* row = src + r * n_per_row;
        bool finite = true;
        for (int64_t i = 0; i < n_per_row; ++i) finite &= std::isfinite(row[i]);
        if (!finite) {
            bad_row = std::max(bad_row, r);
            continue;
        }
        f.quantize(row, static_cast<uint8_t*>(dst) + static_cast<size_t>(r) * row_bytes, n_per_row, imatrix);
    }
    if (bad_row >= 0) throw Error("row " + std::to_string(bad_row) + " holds a NaN or infinite value");
    return row_bytes * static_cast<size_t>(n_rows);
}

GgmlType vec_dot_type(GgmlType type) { return require(type, "dot").dot_type; }

void quantize_activation_row(GgmlType act_type, const float* src, void* dst, int64_t n) {
    if (act_type == GgmlType::Q8_0) return q8_0_activation_quantize(src, dst, n);
    require(act_type, "quantize").quantize(src, dst, n, nullptr);
}

namespace {

enum class Simd { Scalar, Avx2, Avx512 };

Simd detect_simd() {
    Simd best = Simd::Scalar;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        best = Simd::Avx2;
    }
    if (best == Simd::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
        best = Simd::Avx512;
    }
    if (const char* cap = std::getenv("GGUF_SIMD")) {
        std::string c = cap;
        if (c == "scalar") best = Simd::Scalar;
        if (c == "avx2" && best == Simd::Avx512) best = Simd::Avx2;
    }
    return best;
}

Simd simd() {
    static const Simd level = detect_simd();
    return level;
}

}  // namespace

const char* simd_level() {
    switch (simd()) {
        case Simd::Avx512: return "avx512";
        case Simd::Avx2: return "avx2";
        case Simd::Scalar: return "scalar";
    }
    return "scalar";
}

DotFn dot_function(GgmlType type) {
    const FormatOps& f = require(type, "dot");
    const Simd level = simd();
    if (level == Simd::Avx512 && f.dot_avx512) return f.dot_avx512;
    if (level >= Simd::Avx2 && f.dot_avx2) return f.dot_avx2;
    if (!f.dot_scalar) throw Error("no dot product for type " + std::string(gguf::type_name(type)));
    return f.dot_scalar;
}

float vec_dot(GgmlType type, int64_t n, const void* weight_row, const void* act_row) {
    return dot_function(type)(n, weight_row, act_row);
}

}  // namespace quant
