// The activation formats of the dot products, rounded as ggml's CPU backend rounds them on x86, so
// that a quantized model's logits differ from llama.cpp's by the order of float sums only:
// - Q8_K (the K-quants' and IQ4_XS's): ggml's reference quantization, which x86 uses too (it maps the
//   largest magnitude to -127 rather than -128 so that negating a block never overflows).
// - Q8_0 (the 32-blocks'): a weight format too (legacy_quants.cpp, ggml's reference rounding, which
//   llama-quantize writes), but ggml's x86 code quantizes activations differently from that reference:
//   the multiplier is 127 / amax (one rounding) rather than 1 / (amax / 127) (two), and halves round to
//   even rather than away from zero. The two multipliers differ in the last bit for some blocks, and
//   a product that lands within that bit of a half then rounds to the other integer; on the tiny
//   qwen35moe reference one embedding value of a frequent token did so in every chunk, which alone
//   moved the Q8_0 file's perplexity by 1% against llama.cpp's (docs/quantize.md). The single
//   rounding is also the more accurate one.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "block_common.h"
#include "format_ops.h"
#include "quant/float16.h"

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

void q8_0_activation_quantize(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ8_0*>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        float amax = 0;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = f32_to_f16(amax / 127.f);
        for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
    }
}

// Q8_K is never a weight type, so it has no dot product of its own.
const FormatOps kQ8_KOps{GgmlType::Q8_K, q8_k_dequantize, q8_k_quantize, false, GgmlType::Q8_K};

}  // namespace quant
