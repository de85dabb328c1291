// Q8_K, the activation format the K-quant dot products take: ggml's reference quantization (which
// maps the largest magnitude to -127 rather than -128 so that negating a block never overflows).
// Q8_0, the activation format of the 32-blocks, is a weight format too and lives in legacy_quants.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "block_common.h"
#include "format_ops.h"

namespace quant {
namespace {

void q8_k_quantize(const float* x, void* dst, int64_t n, const float*) {
    auto* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
        float max = 0, amax = 0;
        for (int j = 0; j < kQKK; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < kQKK; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < kQKK / 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

void q8_k_dequantize(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const BlockQ8_K*>(src);
    for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
        for (int j = 0; j < kQKK; ++j) dst[j] = b[i].d * b[i].qs[j];
    }
}

}  // namespace

// Q8_K is never a weight type, so it has no dot product of its own.
const FormatOps kQ8_KOps{GgmlType::Q8_K, q8_k_dequantize, q8_k_quantize, false, GgmlType::Q8_K};

}  // namespace quant
