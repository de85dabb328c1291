#include "quant/gemm.h"

#include <string_view>

#include "gemm_kernels.h"
#include "quant/quant.h"

namespace quant {

GemmFn gemm_function(GgmlType type) {
    static const bool avx512 = std::string_view(simd_level()) == "avx512";
    if (!avx512) return nullptr;
    static const bool vnni = __builtin_cpu_supports("avx512vnni");
    switch (type) {
        case GgmlType::Q8_0: return vnni ? gemm_q8_0_q8_0_avx512vnni : gemm_q8_0_q8_0_avx512;
        case GgmlType::Q4_K: return gemm_q4_k_q8_k_avx512;
        case GgmlType::Q6_K: return gemm_q6_k_q8_k_avx512;
        default: return nullptr;
    }
}

}  // namespace quant
