#include "quant/panel.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "quant/quant.h"

namespace quant {

// panel_avx512.cpp (compiled with AVX-512 VNNI; only reached after the CPU check below)
extern const PanelKernels panel_q4_k_avx512vnni;
extern const PanelKernels panel_q6_k_avx512vnni;
extern const PanelKernels panel_q8_0_avx512vnni;

const PanelKernels* panel_kernels(GgmlType type) {
    // GGUF_PANELS=off leaves the batched matmuls to the tiles (to compare the two on one binary)
    static const bool on = [] {
        const char* e = std::getenv("GGUF_PANELS");
        return std::string_view(simd_level()) == "avx512" && __builtin_cpu_supports("avx512vnni") &&
               !(e && (std::strcmp(e, "off") == 0 || std::strcmp(e, "0") == 0));
    }();
    if (!on) return nullptr;
    switch (type) {
        case GgmlType::Q4_K: return &panel_q4_k_avx512vnni;
        case GgmlType::Q6_K: return &panel_q6_k_avx512vnni;
        case GgmlType::Q8_0: return &panel_q8_0_avx512vnni;
        default: return nullptr;
    }
}

}  // namespace quant
