// AVX-512 dot products (compiled with -mavx512f -mavx512bw plus the AVX2 set; registry.cpp calls them
// only on CPUs with F and BW). The scheme is dot_avx2.cpp's at twice the width: two 32-blocks, or 64
// elements of a super-block, per multiply. AVX-512 has no vpsignb, so signed x signed products take
// |w| and negate a under the mask of negative w; |a| <= 127 keeps that negation exact.
#include "block_common.h"
#include "dot_kernels.h"
#include "dot_x86.h"
#include "dot_x86_512.h"
#include "quant/float16.h"

namespace quant {
namespace {

// The 16 int32 sums added pairwise into 8: K-quant kernels finish in 256 bits.
inline __m256i fold(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

inline __m512i dot_u8_i8(__m512i u, __m512i s) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

inline __m512i dot_i8_i8(__m512i w, __m512i a) {
    const __mmask64 negative = _mm512_movepi8_mask(w);
    return dot_u8_i8(_mm512_abs_epi8(w), _mm512_mask_sub_epi8(a, negative, _mm512_setzero_si512(), a));
}

// Block i's scale in lanes 0-7, block i+1's in lanes 8-15: the layout of a joined pair's sums.
inline __m512 pair_scale(float first, float second) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(first), _mm512_set1_ps(second));
}

// Walks a row of 32-blocks two at a time. `pair_sums(i)` gives the int32 sums of blocks i and i+1
// joined (`one_sums(i)` those of a last odd block) for each of the two float scales `scale(i)` gives:
// the block scale and the minimum's.
template <typename PairSums, typename OneSums, typename Scale>
float legacy_dot(int64_t nb, PairSums pair_sums, OneSums one_sums, Scale scale) {
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const auto [s0, s1] = pair_sums(i);
        const auto [d0, m0] = scale(i);
        const auto [d1, m1] = scale(i + 1);
        acc = _mm512_fmadd_ps(pair_scale(d0, d1), _mm512_cvtepi32_ps(s0), acc);
        acc = _mm512_fmadd_ps(pair_scale(m0, m1), _mm512_cvtepi32_ps(s1), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        const auto [s0, s1] = one_sums(i);
        const auto [d, m] = scale(i);
        sum += d * hsum(s0) + m * hsum(s1);
    }
    return sum;
}

struct Sums512 {
    __m512i s0, s1;
};
struct Sums256 {
    __m256i s0, s1;
};
struct Scales {
    float d, m;
};

// The two scales of a symmetric format: only d; m multiplies a zero sum.
template <typename Block>
Scales symmetric(const Block& x, const BlockQ8_0& y) {
    return {fp16(x.d) * fp16(y.d), 0.f};
}

template <typename Block>
Scales with_min(const Block& x, const BlockQ8_0& y) {
    const float dy = fp16(y.d);
    return {fp16(x.d) * dy, fp16(x.m) * dy};
}

// Symmetric formats: `levels(block)` gives the 32 signed levels of a weight block.
template <typename Block, typename Levels>
float symmetric_dot(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    return legacy_dot(
        n / kQK,
        [&](int64_t i) {
            const __m512i s = dot_i8_i8(join(levels(x[i]), levels(x[i + 1])), join(load(y[i].qs), load(y[i + 1].qs)));
            return Sums512{s, _mm512_setzero_si512()};
        },
        [&](int64_t i) { return Sums256{dot_i8_i8(levels(x[i]), load(y[i].qs)), _mm256_setzero_si256()}; },
        [&](int64_t i) { return symmetric(x[i], y[i]); });
}

// Formats with a minimum: unsigned levels, and the activation sums for the minimum.
template <typename Block, typename Levels>
float with_min_dot(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    return legacy_dot(
        n / kQK,
        [&](int64_t i) {
            const __m512i ya = join(load(y[i].qs), load(y[i + 1].qs));
            return Sums512{dot_u8_i8(join(levels(x[i]), levels(x[i + 1])), ya), dot_u8_i8(_mm512_set1_epi8(1), ya)};
        },
        [&](int64_t i) {
            const __m256i ya = load(y[i].qs);
            return Sums256{dot_u8_i8(levels(x[i]), ya), dot_u8_i8(_mm256_set1_epi8(1), ya)};
        },
        [&](int64_t i) { return with_min(x[i], y[i]); });
}

// Four independent accumulators hide the FMA latency; `load16` turns 16 elements into floats.
template <typename T, typename Load, typename Scalar>
float float_dot(int64_t n, const T* x, const T* y, Load load16, Scalar to_f32) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(load16(x + i + 16 * k), load16(y + i + 16 * k), acc[k]);
    }
    for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(load16(x + i), load16(y + i), acc[0]);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (; i < n; ++i) sum += to_f32(x[i]) * to_f32(y[i]);
    return sum;
}

}  // namespace

// --- floats -------------------------------------------------------------------------------------

float dot_f32_avx512(int64_t n, const void* w, const void* a) {
    return float_dot(
        n, static_cast<const float*>(w), static_cast<const float*>(a), [](const float* p) { return _mm512_loadu_ps(p); },
        [](float v) { return v; });
}

float dot_f16_avx512(int64_t n, const void* w, const void* a) {
    return float_dot(
        n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a),
        [](const uint16_t* p) { return _mm512_cvtph_ps(load(p)); }, [](uint16_t h) { return fp16(h); });
}

float dot_bf16_avx512(int64_t n, const void* w, const void* a) {
    return float_dot(
        n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a),
        [](const uint16_t* p) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load(p)), 16)); },
        [](uint16_t h) { return bf16_to_f32(h); });
}

// --- 32-blocks against Q8_0 ---------------------------------------------------------------------

float dot_q4_0_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return symmetric_dot<BlockQ4_0>(n, w, a, [](const BlockQ4_0& b) {
        return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8));
    });
}

float dot_q5_0_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return symmetric_dot<BlockQ5_0>(n, w, a, [](const BlockQ5_0& b) {
        return _mm256_sub_epi8(_mm256_or_si256(nibbles32(b.qs), fifth_bits(b.qh)), _mm256_set1_epi8(16));
    });
}

float dot_q8_0_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return symmetric_dot<BlockQ8_0>(n, w, a, [](const BlockQ8_0& b) { return load(b.qs); });
}

float dot_q4_1_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return with_min_dot<BlockQ4_1>(n, w, a, [](const BlockQ4_1& b) { return nibbles32(b.qs); });
}

float dot_q5_1_q8_0_avx512(int64_t n, const void* w, const void* a) {
    return with_min_dot<BlockQ5_1>(n, w, a, [](const BlockQ5_1& b) {
        return _mm256_or_si256(nibbles32(b.qs), fifth_bits(b.qh));
    });
}

// --- K-quants against Q8_K ----------------------------------------------------------------------

float dot_q2_k_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ2_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQKK; ++i) {
        const uint8_t* sc = x[i].scales;
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)), 4),
                                           _mm_set1_epi8(0x0F));
        acc_min = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].dmin)),
                                  _mm256_cvtepi32_ps(scaled_block_sums(mins, y[i])), acc_min);
        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 2; ++c) {
            const __m256i q = load(x[i].qs + 32 * c);
            for (int s = 0; s < 4; s += 2) {
                const int sb = 8 * c + 2 * s;  // four sub-blocks of 16 from here
                const __m512i levels = join(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3),
                                            _mm256_and_si256(_mm256_srli_epi16(q, 2 * s + 2), m3));
                const __m512i p = _mm512_maddubs_epi16(levels, load512(y[i].qs + 16 * sb));
                const __m512i scales = join(scale_pair(sc[sb] & 0xF, sc[sb + 1] & 0xF),
                                            scale_pair(sc[sb + 2] & 0xF, sc[sb + 3] & 0xF));
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, scales));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    return hsum(_mm256_sub_ps(acc, acc_min));
}

float dot_q3_k_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ3_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    float sum_offset = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        int8_t sc[16];
        unpack_q3_k_scales(x[i].scales, sc);
        // (Scalar: sc was just written byte by byte, and a vector load of it would stall on that.)
        int offset = 0;
        for (int j = 0; j < 16; ++j) offset += sc[j] * y[i].bsums[j];
        const __m256i hm = load(x[i].hmask);
        // Levels + 4 (0..7) for run s of chunk c: 2 low bits from qs, bit 2 from hmask bit 4c + s.
        auto levels = [&](__m256i q, int c, int s) {
            const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * c + s)));
            const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
            return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3), high);
        };
        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 2; ++c) {
            const __m256i q = load(x[i].qs + 32 * c);
            for (int s = 0; s < 4; s += 2) {
                const int sb = 8 * c + 2 * s;
                const __m512i p = _mm512_maddubs_epi16(join(levels(q, c, s), levels(q, c, s + 1)),
                                                       load512(y[i].qs + 16 * sb));
                const __m512i scales = join(scale_pair(sc[sb], sc[sb + 1]), scale_pair(sc[sb + 2], sc[sb + 3]));
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, scales));
            }
        }
        const float d = fp16(x[i].d) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc);
        sum_offset += d * (4 * offset);
    }
    return hsum(acc) - sum_offset;
}

float dot_q4_k_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    // sub-block scales 2j | 2j + 1 in the two halves: one vpermw per 64 elements, not two broadcasts
    const __m512i scale_index = join(_mm256_set1_epi16(0), _mm256_set1_epi16(1));
    __m256 acc = _mm256_setzero_ps();
    float sum_min = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        uint8_t sc[8];
        const int summ = scale_min_sums(x[i], y[i], sc);
        int64_t sc8;
        std::memcpy(&sc8, sc, 8);
        const __m512i sc16 = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc8)));
        __m512i sumi = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j) {
            const __m256i q = load(x[i].qs + 32 * j);
            // the bytes and the bytes shifted down by 4 side by side, then one mask for both halves
            const __m512i levels = _mm512_and_si512(join(q, _mm256_srli_epi16(q, 4)), m4);
            const __m512i p = _mm512_maddubs_epi16(levels, load512(y[i].qs + 64 * j));
            const __m512i scales =
                _mm512_permutexvar_epi16(_mm512_add_epi16(scale_index, _mm512_set1_epi16(static_cast<int16_t>(2 * j))), sc16);
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, scales));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(fold(sumi)), acc);
        sum_min += y[i].d * fp16(x[i].dmin) * summ;
    }
    return hsum(acc) - sum_min;
}

float dot_q5_k_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
    // sub-block scales 2j | 2j + 1 in the two halves: one vpermw per 64 elements, not two broadcasts
    const __m512i scale_index = join(_mm256_set1_epi16(0), _mm256_set1_epi16(1));
    __m256 acc = _mm256_setzero_ps();
    float sum_min = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        uint8_t sc[8];
        const int summ = scale_min_sums(x[i], y[i], sc);
        int64_t sc8;
        std::memcpy(&sc8, sc, 8);
        const __m512i sc16 = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc8)));
        __m256i qh = load(x[i].qh);
        __m512i sumi = _mm512_setzero_si512();
        // As in the AVX2 kernel: qh moves down 2 bits per 64 and only bits 0 and 1 of a byte are read.
        for (int j = 0; j < 4; ++j, qh = _mm256_srli_epi16(qh, 2)) {
            const __m256i q = load(x[i].qs + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(qh, two), 3));
            const __m512i p = _mm512_maddubs_epi16(join(lo, hi), load512(y[i].qs + 64 * j));
            const __m512i scales =
                _mm512_permutexvar_epi16(_mm512_add_epi16(scale_index, _mm512_set1_epi16(static_cast<int16_t>(2 * j))), sc16);
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, scales));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(fold(sumi)), acc);
        sum_min += y[i].d * fp16(x[i].dmin) * summ;
    }
    return hsum(acc) - sum_min;
}

float dot_q6_k_q8_k_avx512(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ6_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m256i m3 = _mm256_set1_epi8(3);
    // the int16 scale of sub-block q in the q-th 128 bits, plus 4k below: one vpermw per 64 elements
    // instead of four broadcasts of scalars (as the Q6_K tile)
    const __m512i scale_index = join(_mm256_set_m128i(_mm_set1_epi16(1), _mm_set1_epi16(0)),
                                     _mm256_set_m128i(_mm_set1_epi16(3), _mm_set1_epi16(2)));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQKK; ++i) {
        const int8_t* sc = x[i].scales;
        const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
        const __m256i offset = scaled_block_sums(sc8, y[i]);
        const __m512i sc16 = _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(sc8));
        __m512i sumi = _mm512_setzero_si512();
        for (int half = 0; half < 2; ++half) {
            // 64 bytes of ql are the low nibbles of quarters 0|1 and, shifted, of quarters 2|3.
            const __m512i ql = load512(x[i].ql + 64 * half);
            const __m256i qh = load(x[i].qh + 32 * half);
            auto high = [&](int quarter) {
                return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), m3), 4);
            };
            const __m512i low[2] = {_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4)};
            for (int pair = 0; pair < 2; ++pair) {
                const __m512i levels = _mm512_or_si512(low[pair], join(high(2 * pair), high(2 * pair + 1)));
                const int sb = 8 * half + 4 * pair;
                const __m512i p = _mm512_maddubs_epi16(levels, load512(y[i].qs + 16 * sb));
                const __m512i scales =
                    _mm512_permutexvar_epi16(_mm512_add_epi16(scale_index, _mm512_set1_epi16(static_cast<int16_t>(sb))), sc16);
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, scales));
            }
        }
        const __m256i total = _mm256_sub_epi32(fold(sumi), _mm256_slli_epi32(offset, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * y[i].d), _mm256_cvtepi32_ps(total), acc);
    }
    return hsum(acc);
}

}  // namespace quant
