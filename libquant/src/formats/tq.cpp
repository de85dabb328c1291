// TQ1_0 and TQ2_0: ternary 256-blocks (values -d, 0, +d) for BitNet-style models. TQ2_0 stores each
// trit in 2 bits; TQ1_0 packs five trits into a byte as a base-3 fraction of 256 (scaled by 256/243,
// rounded up), so trit n of byte q is the integer part of 3 * (q * 3^n mod 256) / 256.
//
// ggml sets d to the block's absolute maximum, which zeroes almost everything in a block of ordinary
// weights. For a given d the best trit is plain rounding of x/d, so the elements set to +-1 are always
// the largest |x|: the quantizer tries every such top-k set, takes the weighted least-squares scale of
// each, and keeps the one with the least (importance-weighted) error after fp16 rounding. ggml's
// choice is among the candidates, so the result is never worse, and in practice far better.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "format_ops.h"
#include "iq_blocks.h"
#include "iq_dot.h"
#include "quant/float16.h"

namespace quant {
namespace {

constexpr int kTQ1Bulk = 160;  // elements in qs[0..32): five trits in each of 32 bytes
constexpr int kTQ1Tail = 80;   // elements in qs[32..48)
constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};

// Trit n (0 = most significant) of a TQ1_0 byte.
int tq1_trit(uint8_t q, int n) {
    const uint8_t shifted = static_cast<uint8_t>(q * kPow3[n]);
    return (shifted * 3) >> 8;
}

// Base-3 digits (0..2, most significant first) to the byte whose trits tq1_trit recovers.
uint8_t tq1_pack(const int* trits, int count) {
    int q = 0;
    for (int i = 0; i < count; ++i) q = q * 3 + trits[i];
    for (int i = count; i < 5; ++i) q *= 3;  // pad to five digits: the first trit stays the leading one
    return static_cast<uint8_t>((q * 256 + 242) / 243);
}

// TQ1_0 element order: byte m of the bulk holds elements m, m+32, ..., m+128; byte m of the tail holds
// 160+m, 160+m+16, ...; byte j of qh holds 240+j, 240+j+4, 240+j+8, 240+j+12.
void tq1_unpack(const BlockTQ1_0& b, int8_t* t) {
    for (int n = 0; n < 5; ++n) {
        for (int m = 0; m < 32; ++m) t[n * 32 + m] = static_cast<int8_t>(tq1_trit(b.qs[m], n));
        for (int m = 0; m < 16; ++m) t[kTQ1Bulk + n * 16 + m] = static_cast<int8_t>(tq1_trit(b.qs[32 + m], n));
    }
    for (int n = 0; n < 4; ++n) {
        for (int j = 0; j < 4; ++j) t[kTQ1Bulk + kTQ1Tail + n * 4 + j] = static_cast<int8_t>(tq1_trit(b.qh[j], n));
    }
}

void tq1_pack_block(const int* t, BlockTQ1_0& b) {
    int digits[5];
    for (int m = 0; m < 32; ++m) {
        for (int n = 0; n < 5; ++n) digits[n] = t[n * 32 + m];
        b.qs[m] = tq1_pack(digits, 5);
    }
    for (int m = 0; m < 16; ++m) {
        for (int n = 0; n < 5; ++n) digits[n] = t[kTQ1Bulk + n * 16 + m];
        b.qs[32 + m] = tq1_pack(digits, 5);
    }
    for (int j = 0; j < 4; ++j) {
        for (int n = 0; n < 4; ++n) digits[n] = t[kTQ1Bulk + kTQ1Tail + n * 4 + j];
        b.qh[j] = tq1_pack(digits, 4);
    }
}

// TQ2_0 element order: byte m of each 32-byte half holds elements m, m+32, m+64, m+96 of its 128.
void tq2_unpack(const BlockTQ2_0& b, int8_t* t) {
    for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 4; ++l) {
            for (int m = 0; m < 32; ++m) t[128 * h + 32 * l + m] = static_cast<int8_t>((b.qs[32 * h + m] >> 2 * l) & 3);
        }
    }
}

void tq2_pack_block(const int* t, BlockTQ2_0& b) {
    for (int h = 0; h < 2; ++h) {
        for (int m = 0; m < 32; ++m) {
            int q = 0;
            for (int l = 0; l < 4; ++l) q |= t[128 * h + 32 * l + m] << 2 * l;
            b.qs[32 * h + m] = static_cast<uint8_t>(q);
        }
    }
}

// Trits (0, 1, 2 for -1, 0, +1) of x at scale d; returns the weighted squared error.
float ternary_with_scale(const float* x, const float* w, float d, int* t) {
    float err = 0;
    const float id = d > 0 ? 1 / d : 0;
    for (int j = 0; j < kQKK; ++j) {
        const int q = std::clamp(nearest_int(x[j] * id), -1, 1);
        t[j] = q + 1;
        const float e = x[j] - d * static_cast<float>(q);
        err += (w ? w[j] : 1.0f) * e * e;
    }
    return err;
}

// The fp16 scale and trits of one block (see the file comment).
uint16_t ternary_block(const float* x, const float* w, int* t) {
    int order[kQKK];
    std::iota(order, order + kQKK, 0);
    std::sort(order, order + kQKK, [x](int a, int b) { return std::fabs(x[a]) > std::fabs(x[b]); });
    float amax = std::fabs(x[order[0]]);
    uint16_t best_d = f32_to_f16(amax);  // ggml's choice
    float best_err = ternary_with_scale(x, w, f16_to_f32(best_d), t);
    if (amax == 0) return best_d;

    // Scale reduction of the top-k set with its least-squares scale: (sum w|x|)^2 / sum w.
    double sum_wx = 0, sum_w = 0, best_gain = 0;
    float best_scale = 0;
    for (int k = 0; k < kQKK; ++k) {
        const int i = order[k];
        const double wi = w ? w[i] : 1.0;
        sum_wx += wi * std::fabs(x[i]);
        sum_w += wi;
        if (sum_w > 0 && sum_wx * sum_wx > best_gain * sum_w) {
            best_gain = sum_wx * sum_wx / sum_w;
            best_scale = static_cast<float>(sum_wx / sum_w);
        }
    }
    int trial[kQKK];
    float scale = best_scale;
    // Rounding to fp16 and re-rounding the trits can shift the set; refit the scale to it twice.
    for (int iter = 0; iter < 3 && scale > 0; ++iter) {
        const uint16_t h = f32_to_f16(scale);
        const float err = ternary_with_scale(x, w, f16_to_f32(h), trial);
        if (err < best_err) {
            best_err = err;
            best_d = h;
            std::copy(trial, trial + kQKK, t);
        }
        double sx = 0, s1 = 0;
        for (int j = 0; j < kQKK; ++j) {
            if (trial[j] == 1) continue;
            const double wi = w ? w[j] : 1.0;
            sx += wi * std::fabs(x[j]);
            s1 += wi;
        }
        scale = s1 > 0 ? static_cast<float>(sx / s1) : 0;
    }
    return best_d;
}

void tq1_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockTQ1_0*>(dst);
    int t[kQKK];
    for (int64_t b = 0; b < n / kQKK; ++b) {
        y[b].d = ternary_block(src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, t);
        tq1_pack_block(t, y[b]);
    }
}

void tq2_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockTQ2_0*>(dst);
    int t[kQKK];
    for (int64_t b = 0; b < n / kQKK; ++b) {
        y[b].d = ternary_block(src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, t);
        tq2_pack_block(t, y[b]);
    }
}

template <class Block, void (*Unpack)(const Block&, int8_t*)>
void tq_dequantize(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const Block*>(src);
    int8_t t[kQKK];
    for (int64_t b = 0; b < n / kQKK; ++b, dst += kQKK) {
        Unpack(x[b], t);
        const float d = f16_to_f32(x[b].d);
        for (int j = 0; j < kQKK; ++j) dst[j] = static_cast<float>(t[j] - 1) * d;
    }
}

// Against Q8_K: sum (t - 1) * q = sum t * q - sum q, the latter from the activation's group sums.
template <class Block, void (*Unpack)(const Block&, int8_t*)>
float tq_dot(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    int8_t t[kQKK];
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        Unpack(x[b], t);
        int32_t sumi = 0;
        for (int j = 0; j < kQKK; ++j) sumi += t[j] * y[b].qs[j];
        for (int g = 0; g < kQKK / 16; ++g) sumi -= y[b].bsums[g];
        sum += f16_to_f32(x[b].d) * y[b].d * static_cast<float>(sumi);
    }
    return sum;
}

}  // namespace

float dot_tq1_0_q8_k_scalar(int64_t n, const void* w, const void* a) { return tq_dot<BlockTQ1_0, tq1_unpack>(n, w, a); }
float dot_tq2_0_q8_k_scalar(int64_t n, const void* w, const void* a) { return tq_dot<BlockTQ2_0, tq2_unpack>(n, w, a); }

const FormatOps kTQ1_0Ops{GgmlType::TQ1_0, tq_dequantize<BlockTQ1_0, tq1_unpack>, tq1_quantize, false,
                          GgmlType::Q8_K, dot_tq1_0_q8_k_scalar, dot_tq1_0_q8_k_avx2, dot_tq1_0_q8_k_avx512};
const FormatOps kTQ2_0Ops{GgmlType::TQ2_0, tq_dequantize<BlockTQ2_0, tq2_unpack>, tq2_quantize, false,
                          GgmlType::Q8_K, dot_tq2_0_q8_k_scalar, dot_tq2_0_q8_k_avx2, dot_tq2_0_q8_k_avx512};

}  // namespace quant
