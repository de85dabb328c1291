#include "simd.h"

#include <string_view>

#include "quant/quant.h"

namespace runtime::cpu {

Simd simd() {
    static const Simd level = [] {
        const std::string_view q = quant::simd_level();
        if (q == "avx512") return Simd::Avx512;
        if (q == "avx2") return Simd::Avx2;
        return Simd::Scalar;
    }();
    return level;
}

}  // namespace runtime::cpu
