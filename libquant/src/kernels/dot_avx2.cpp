// AVX2 dot products (compiled with -mavx2 -mfma -mf16c; registry.cpp calls them only on CPUs that
// have those). Integer formats multiply 32 int8 pairs at a time with maddubs, which takes one unsigned
// and one signed operand: levels that are naturally unsigned (nibbles, 2/3/5/6-bit codes) go in as
// they are and any offset is taken back through the activation sums; signed levels use the sign
// transfer |w| * (a * sign(w)). Every pair sum stays below 2^15 (|level| <= 63, |a| <= 127), so
// maddubs never saturates. Sub-block scales are applied in int32 with madd before one float multiply
// per block.
#include <immintrin.h>

#include "block_common.h"
#include "dot_kernels.h"
#include "dot_x86.h"
#include "quant/float16.h"

namespace quant {

// --- floats -------------------------------------------------------------------------------------

namespace {

// Four independent accumulators hide the FMA latency; `load8` turns 8 elements into floats.
template <typename T, typename Load, typename Scalar>
float float_dot(int64_t n, const T* x, const T* y, Load load8, Scalar to_f32) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load8(x + i + 8 * k), load8(y + i + 8 * k), acc[k]);
    }
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load8(x + i), load8(y + i), acc[0]);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; ++i) sum += to_f32(x[i]) * to_f32(y[i]);
    return sum;
}

}  // namespace

float dot_f32_avx2(int64_t n, const void* w, const void* a) {
    return float_dot(
        n, static_cast<const float*>(w), static_cast<const float*>(a), [](const float* p) { return _mm256_loadu_ps(p); },
        [](float v) { return v; });
}

float dot_f16_avx2(int64_t n, const void* w, const void* a) {
    return float_dot(
        n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a),
        [](const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); },
        [](uint16_t h) { return fp16(h); });
}

float dot_bf16_avx2(int64_t n, const void* w, const void* a) {
    return float_dot(
        n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a),
        [](const uint16_t* p) {
            const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
            return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
        },
        [](uint16_t h) { return bf16_to_f32(h); });
}

// --- 32-blocks against Q8_0 ---------------------------------------------------------------------

float dot_q4_0_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_0*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i levels = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
        const __m256i s = dot_i8_i8(levels, load(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum(acc);
}

float dot_q4_1_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_1*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    const __m256i ones = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i ya = load(y[i].qs);
        const __m256 s = _mm256_cvtepi32_ps(dot_u8_i8(nibbles32(x[i].qs), ya));
        const __m256 sy = _mm256_cvtepi32_ps(dot_u8_i8(ones, ya));  // the minimum multiplies the sum of a
        const float dy = fp16(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * dy), s, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].m) * dy), sy, acc);
    }
    return hsum(acc);
}

float dot_q5_0_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_0*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i q = _mm256_or_si256(nibbles32(x[i].qs), fifth_bits(x[i].qh));
        const __m256i s = dot_i8_i8(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), load(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum(acc);
}

float dot_q5_1_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_1*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    const __m256i ones = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i ya = load(y[i].qs);
        const __m256i q = _mm256_or_si256(nibbles32(x[i].qs), fifth_bits(x[i].qh));
        const __m256 s = _mm256_cvtepi32_ps(dot_u8_i8(q, ya));
        const __m256 sy = _mm256_cvtepi32_ps(dot_u8_i8(ones, ya));
        const float dy = fp16(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * dy), s, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].m) * dy), sy, acc);
    }
    return hsum(acc);
}

float dot_q8_0_q8_0_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ8_0*>(w);
    const auto* y = static_cast<const BlockQ8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i s = dot_i8_i8(load(x[i].qs), load(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum(acc);
}

// --- K-quants against Q8_K ----------------------------------------------------------------------
// Each super-block is reduced to one integer sum of scale * level * a, plus (for formats with
// minimums or offsets) a correction from the activation's 16-element sums, then scaled once.

float dot_q2_k_q8_k_avx2(int64_t n, const void* w, const void* a) {
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
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; ++c) {
            __m256i q = load(x[i].qs + 32 * c);
            for (int s = 0; s < 4; ++s, q = _mm256_srli_epi16(q, 2)) {
                const int sb = 8 * c + 2 * s;
                const __m256i p = _mm256_maddubs_epi16(_mm256_and_si256(q, m3), load(y[i].qs + 16 * sb));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[sb] & 0xF, sc[sb + 1] & 0xF)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(_mm256_sub_ps(acc, acc_min));
}

float dot_q3_k_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ3_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    float sum_offset = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        int8_t sc[16];
        unpack_q3_k_scales(x[i].scales, sc);
        // Levels go in as level + 4 (0..7, unsigned); the 4 * a comes back out through the sums.
        // (Scalar: sc was just written byte by byte, and a vector load of it would stall on that.)
        int offset = 0;
        for (int j = 0; j < 16; ++j) offset += sc[j] * y[i].bsums[j];
        const __m256i hm = load(x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; ++c) {
            __m256i q = load(x[i].qs + 32 * c);
            for (int s = 0; s < 4; ++s, q = _mm256_srli_epi16(q, 2)) {
                const int sb = 8 * c + 2 * s;
                const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * c + s)));
                const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
                const __m256i levels = _mm256_or_si256(_mm256_and_si256(q, m3), high);
                const __m256i p = _mm256_maddubs_epi16(levels, load(y[i].qs + 16 * sb));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[sb], sc[sb + 1])));
            }
        }
        const float d = fp16(x[i].d) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        sum_offset += d * (4 * offset);
    }
    return hsum(acc) - sum_offset;
}

float dot_q4_k_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float sum_min = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        uint8_t sc[8];
        const int summ = scale_min_sums(x[i], y[i], sc);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i q = load(x[i].qs + 32 * j);
            const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(q, m4), load(y[i].qs + 64 * j));
            const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), load(y[i].qs + 64 * j + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(lo, _mm256_set1_epi16(sc[2 * j])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(hi, _mm256_set1_epi16(sc[2 * j + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        sum_min += y[i].d * fp16(x[i].dmin) * summ;
    }
    return hsum(acc) - sum_min;
}

float dot_q5_k_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
    __m256 acc = _mm256_setzero_ps();
    float sum_min = 0;
    for (int64_t i = 0; i < n / kQKK; ++i) {
        uint8_t sc[8];
        const int summ = scale_min_sums(x[i], y[i], sc);
        __m256i qh = load(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j, qh = _mm256_srli_epi16(qh, 2)) {
            // Bits 2j and 2j+1 of qh are bit 4 of this 64's first and second halves; qh is shifted
            // down 2 per step and only bits 0 and 1 of each byte are read, so the 16-bit shift's
            // spill from the neighbouring byte never matters.
            const __m256i q = load(x[i].qs + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(qh, two), 3));
            const __m256i plo = _mm256_maddubs_epi16(lo, load(y[i].qs + 64 * j));
            const __m256i phi = _mm256_maddubs_epi16(hi, load(y[i].qs + 64 * j + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * j])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * j + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        sum_min += y[i].d * fp16(x[i].dmin) * summ;
    }
    return hsum(acc) - sum_min;
}

float dot_q6_k_q8_k_avx2(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ6_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQKK; ++i) {
        const int8_t* sc = x[i].scales;
        // Levels go in as level + 32 (0..63, unsigned); the 32 * a comes back out through the sums.
        const __m256i offset =
            scaled_block_sums(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)), y[i]);
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; ++half) {
            const __m256i ql0 = load(x[i].ql + 64 * half);
            const __m256i ql1 = load(x[i].ql + 64 * half + 32);
            const __m256i qh = load(x[i].qh + 32 * half);
            const __m256i low[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
            for (int quarter = 0; quarter < 4; ++quarter) {
                const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), m3);
                const __m256i levels = _mm256_or_si256(low[quarter], _mm256_slli_epi16(high, 4));
                const int sb = 8 * half + 2 * quarter;
                const __m256i p = _mm256_maddubs_epi16(levels, load(y[i].qs + 16 * sb));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[sb], sc[sb + 1])));
            }
        }
        const __m256i total = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * y[i].d), _mm256_cvtepi32_ps(total), acc);
    }
    return hsum(acc);
}

}  // namespace quant
