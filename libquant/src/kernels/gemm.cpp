#include "quant/gemm.h"

#include <string_view>

#include "gemm_kernels.h"
#include "quant/quant.h"

namespace quant {

namespace {

std::string_view level() {
    static const std::string_view l = simd_level();
    return l;
}

}  // namespace

GemmFn gemm_function(GgmlType type) {
    if (level() == "avx512") {
        static const bool vnni = __builtin_cpu_supports("avx512vnni");
        switch (type) {
            case GgmlType::Q8_0: return vnni ? gemm_q8_0_q8_0_avx512vnni : gemm_q8_0_q8_0_avx512;
            case GgmlType::Q4_0: return vnni ? gemm_q4_0_q8_0_avx512vnni : gemm_q4_0_q8_0_avx512;
            case GgmlType::Q2_K: return gemm_q2_k_q8_k_avx512;
            case GgmlType::Q3_K: return gemm_q3_k_q8_k_avx512;
            case GgmlType::Q4_K: return gemm_q4_k_q8_k_avx512;
            case GgmlType::Q5_K: return gemm_q5_k_q8_k_avx512;
            case GgmlType::Q6_K: return gemm_q6_k_q8_k_avx512;
            default: return nullptr;
        }
    }
    if (level() == "avx2") {
        switch (type) {
            case GgmlType::Q8_0: return gemm_q8_0_q8_0_avx2;
            case GgmlType::Q4_0: return gemm_q4_0_q8_0_avx2;
            case GgmlType::Q2_K: return gemm_q2_k_q8_k_avx2;
            case GgmlType::Q3_K: return gemm_q3_k_q8_k_avx2;
            case GgmlType::Q4_K: return gemm_q4_k_q8_k_avx2;
            case GgmlType::Q5_K: return gemm_q5_k_q8_k_avx2;
            case GgmlType::Q6_K: return gemm_q6_k_q8_k_avx2;
            default: return nullptr;
        }
    }
    return nullptr;
}

void quantize_activations(GgmlType act_type, const float* src, void* dst, int64_t n) {
    if (level() == "avx512" && act_type == GgmlType::Q8_0) return quantize_q8_0_avx512(src, dst, n);
    if (level() == "avx512" && act_type == GgmlType::Q8_K) return quantize_q8_k_avx512(src, dst, n);
    if (level() == "avx2" && act_type == GgmlType::Q8_0) return quantize_q8_0_avx2(src, dst, n);
    if (level() == "avx2" && act_type == GgmlType::Q8_K) return quantize_q8_k_avx2(src, dst, n);
    quantize_activation_row(act_type, src, dst, n);
}

}  // namespace quant
