// AVX-512 (F and BW) tile kernels: 4 weight rows times NC activation rows. Per block, each weight row
// is unpacked to bytes and its scales widened once, then multiplied with every activation row of the
// tile; sums stay integer (exact) within a block and are scaled into 16-lane float accumulators.
// The integer scheme is dot_avx512.cpp's: 64 elements (two 32-blocks, or a quarter of a super-block)
// per multiply.
#include "block_common.h"
#include "dot_x86.h"
#include "dot_x86_512.h"
#include "gemm_kernels.h"
#include "gemm_tiles.h"
#include "quant/float16.h"
#include "quant/gemm.h"

namespace quant {
namespace {

constexpr int R = kGemmRows;

// Sums of u[i] * s[i] (u unsigned, s signed) scaled per int16 pair: 16 int32 lanes.
inline __m512i dot_scaled(__m512i u, __m512i s, __m512i scales) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), scales);
}

template <int NC>
inline void store(const __m512 (&acc)[R][NC], float* out) {
    for (int r = 0; r < R; ++r) {
        for (int c = 0; c < NC; ++c) out[r * kGemmCols + c] = _mm512_reduce_add_ps(acc[r][c]);
    }
}

// --- Q8_0 and Q4_0 x Q8_0 -----------------------------------------------------------------------

// Blocks b and b+1 of a row (b+1 only when `two`; else zeros with scale 0): quants and per-lane scales.
inline void q8_0_pair(const BlockQ8_0* x, bool two, __m512i& q, __m512& d) {
    const __m256i hi = two ? load(x[1].qs) : _mm256_setzero_si256();
    q = join(load(x[0].qs), hi);
    d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(fp16(x[0].d)), _mm512_set1_ps(two ? fp16(x[1].d) : 0.0f));
}

// Blocks b and b+1 of a Q4_0 row as levels 0..15 (x = d * (level - 8)), as q8_0_pair lays them out.
inline void q4_0_pair(const BlockQ4_0* x, bool two, __m512i& q, __m512& d) {
    q = join(nibbles32(x[0].qs), two ? nibbles32(x[1].qs) : _mm256_setzero_si256());
    d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(fp16(x[0].d)), _mm512_set1_ps(two ? fp16(x[1].d) : 0.0f));
}

// An activation row's blocks b and b+1, and what a scheme derives from them once per tile step.
struct Column {
    __m512i q, extra;
    __m512 d;
};

// A weight row's blocks b and b+1 as a scheme prepares them.
struct Row {
    __m512i q;
    __m512 d;
    __mmask64 negative = 0;
};

// The 32-block tiles walk both rows and columns two blocks at a time: per step each activation row is
// loaded (Scheme::column), then each weight row (Scheme::row) meets every activation row in one
// integer product (Scheme::sums), scaled into the row x column float accumulator. Always inlined, so
// the VNNI schemes' instructions land in their callers, which are compiled for VNNI.
template <int NC, class Scheme>
[[gnu::always_inline]] inline void pair_tile(int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    __m512 acc[R][NC];
    for (auto& ar : acc) {
        for (auto& v : ar) v = _mm512_setzero_ps();
    }
    const int64_t nb = n / kQK;
    for (int64_t b = 0; b < nb; b += 2) {
        const bool two = b + 1 < nb;
        Column col[NC];
        for (int c = 0; c < NC; ++c) Scheme::column(static_cast<const BlockQ8_0*>(a[c]) + b, two, col[c]);
        for (int r = 0; r < R; ++r) {
            const Row x = Scheme::row(w, stride, r, b, two);
            for (int c = 0; c < NC; ++c) {
                const __m512 sums = _mm512_cvtepi32_ps(Scheme::sums(x, col[c]));
                acc[r][c] = _mm512_fmadd_ps(sums, _mm512_mul_ps(x.d, col[c].d), acc[r][c]);
            }
        }
    }
    store(acc, out);
}

// Q8_0 with maddubs. No vpsignb in AVX-512: |w| times a negated where w < 0 (|a| <= 127 keeps that exact).
struct Q8_0Scheme {
    static void column(const BlockQ8_0* y, bool two, Column& c) { q8_0_pair(y, two, c.q, c.d); }
    static Row row(const void* w, size_t stride, int r, int64_t b, bool two) {
        Row x;
        q8_0_pair(row_of<BlockQ8_0>(w, stride, r) + b, two, x.q, x.d);
        x.negative = _mm512_movepi8_mask(x.q);
        x.q = _mm512_abs_epi8(x.q);
        return x;
    }
    static __m512i sums(const Row& x, const Column& c) {
        const __m512i s = _mm512_mask_sub_epi8(c.q, x.negative, _mm512_setzero_si512(), c.q);
        return dot_scaled(x.q, s, _mm512_set1_epi16(1));
    }
};

// With VNNI, vpdpbusd multiplies unsigned by signed bytes into int32 without the int16 saturation of
// maddubs: w + 128 (w xor 0x80) times a, minus 128 times the sums of a, which are set up once per
// activation row as the accumulator's starting value.
struct Q8_0VnniScheme {
    __attribute__((target("avx512vnni"))) static void column(const BlockQ8_0* y, bool two, Column& c) {
        q8_0_pair(y, two, c.q, c.d);
        const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
        c.extra = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, c.q));
    }
    static Row row(const void* w, size_t stride, int r, int64_t b, bool two) {
        Row x;
        q8_0_pair(row_of<BlockQ8_0>(w, stride, r) + b, two, x.q, x.d);
        x.q = _mm512_xor_si512(x.q, _mm512_set1_epi8(static_cast<char>(0x80)));
        return x;
    }
    __attribute__((target("avx512vnni"))) static __m512i sums(const Row& x, const Column& c) {
        return _mm512_dpbusd_epi32(c.extra, x.q, c.q);
    }
};

// Q4_0: levels times a by maddubs (no saturation below 16), minus 8 times the sums of a per 4 bytes.
struct Q4_0Scheme {
    static void column(const BlockQ8_0* y, bool two, Column& c) {
        q8_0_pair(y, two, c.q, c.d);
        const __m512i sums = dot_scaled(_mm512_set1_epi8(1), c.q, _mm512_set1_epi16(1));
        c.extra = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 3));
    }
    static Row row(const void* w, size_t stride, int r, int64_t b, bool two) {
        Row x;
        q4_0_pair(row_of<BlockQ4_0>(w, stride, r) + b, two, x.q, x.d);
        return x;
    }
    static __m512i sums(const Row& x, const Column& c) {
        return _mm512_add_epi32(c.extra, dot_scaled(x.q, c.q, _mm512_set1_epi16(1)));
    }
};

// The same with VNNI: one vpdpbusd per product, the offset in the accumulator's start.
struct Q4_0VnniScheme {
    __attribute__((target("avx512vnni"))) static void column(const BlockQ8_0* y, bool two, Column& c) {
        q8_0_pair(y, two, c.q, c.d);
        c.extra = _mm512_sub_epi32(_mm512_setzero_si512(),
                                   _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), c.q));
    }
    static Row row(const void* w, size_t stride, int r, int64_t b, bool two) { return Q4_0Scheme::row(w, stride, r, b, two); }
    __attribute__((target("avx512vnni"))) static __m512i sums(const Row& x, const Column& c) {
        return _mm512_dpbusd_epi32(c.extra, x.q, c.q);
    }
};

template <int NC>
void tile(Kind<BlockQ8_0>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    pair_tile<NC, Q8_0Scheme>(n, w, stride, a, out);
}
template <int NC>
void tile(Kind<BlockQ4_0>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    pair_tile<NC, Q4_0Scheme>(n, w, stride, a, out);
}
template <int NC, class Scheme>
__attribute__((target("avx512vnni"))) void vnni_tile(int64_t n, const void* w, size_t stride, const void* const* a,
                                                     float* out) {
    pair_tile<NC, Scheme>(n, w, stride, a, out);
}

// --- K-quants x Q8_K ---------------------------------------------------------------------------

// A weight row's super-block unpacked once per tile step: levels[k] holds elements 64k..64k+63 as
// unsigned bytes, scales[k] their sub-blocks' int16 scales; what the format's correction needs beside.
struct KRow {
    __m512i levels[4], scales[4];
    float d = 0, dmin = 0;
    __m128i sc8;    // Q2_K: the minimums; Q3_K, Q6_K: the signed scales (for the offset)
    __m256i mins;   // Q4_K, Q5_K: the minimums, one per pair of 16-element activation sums
};

// The K-quant tiles: per super-block each weight row is unpacked once (Format::unpack), then meets
// every activation row in four 64-element integer products; Format::finish takes the minimums or the
// level offset off and scales the sum into the row x column accumulator.
template <int NC, class Format>
[[gnu::always_inline]] inline void k_tile(int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    __m512 acc[R][NC];
    for (auto& ar : acc) {
        for (auto& v : ar) v = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < n / kQKK; ++i) {
        for (int r = 0; r < R; ++r) {
            const KRow x = Format::unpack(row_of<typename Format::Block>(w, stride, r)[i]);
            for (int c = 0; c < NC; ++c) {
                const BlockQ8_K& y = static_cast<const BlockQ8_K*>(a[c])[i];
                __m512i sumi = dot_scaled(x.levels[0], load512(y.qs), x.scales[0]);
                for (int k = 1; k < 4; ++k) sumi = _mm512_add_epi32(sumi, dot_scaled(x.levels[k], load512(y.qs + 64 * k), x.scales[k]));
                Format::finish(x, y, sumi, acc[r][c]);
            }
        }
    }
    store(acc, out);
}

// Formats with minimums: d * sum - dmin * (minimums times activation sums).
inline void finish_with_mins(const KRow& x, const BlockQ8_K& y, __m512i sumi, __m256i summ, __m512& acc) {
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(x.d * y.d), acc);
    acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(summ)), _mm512_set1_ps(x.dmin * y.d), acc);
}

// Formats whose levels went in plus 2^shift: take 2^shift * scale * (activation sum) per sub-block off.
template <int kShift>
inline void finish_with_offset(const KRow& x, const BlockQ8_K& y, __m512i sumi, __m512& acc) {
    const __m256i offset = _mm256_slli_epi32(scaled_block_sums(x.sc8, y), kShift);
    sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(offset));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(x.d * y.d), acc);
}

struct Q2_KFormat {
    using Block = BlockQ2_K;
    static KRow unpack(const BlockQ2_K& b) {
        const __m256i m3 = _mm256_set1_epi8(3);
        const __m128i m4 = _mm_set1_epi8(0x0F);
        // byte shuffle of the 16 scales into int16 lanes (index 0x80 in each high byte zeroes it): scale q
        // in the q-th 128 bits, plus 4k below
        const __m512i scale_index = join(_mm256_set_m128i(_mm_set1_epi16(-0x7FFF), _mm_set1_epi16(-0x8000)),
                                         _mm256_set_m128i(_mm_set1_epi16(-0x7FFD), _mm_set1_epi16(-0x7FFE)));
        KRow x;
        const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
        const __m512i sc4 = _mm512_broadcast_i32x4(_mm_and_si128(sc, m4));
        // levels[k] (0..3): bit pairs 2s and 2s + 2 of a 32-byte run of qs, s = 2 * (k % 2); scales[k]
        // their four sub-block scales (the low nibbles), one per 128 bits
        for (int k = 0; k < 4; ++k) {
            const __m256i q = load(b.qs + 32 * (k / 2));
            const int s = 2 * (k % 2);
            x.levels[k] = join(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3),
                               _mm256_and_si256(_mm256_srli_epi16(q, 2 * s + 2), m3));
            x.scales[k] = _mm512_shuffle_epi8(sc4, _mm512_add_epi16(scale_index, _mm512_set1_epi16(static_cast<int16_t>(4 * k))));
        }
        x.sc8 = _mm_and_si128(_mm_srli_epi16(sc, 4), m4);
        x.d = fp16(b.d);
        x.dmin = fp16(b.dmin);
        return x;
    }
    static void finish(const KRow& x, const BlockQ8_K& y, __m512i sumi, __m512& acc) {
        finish_with_mins(x, y, sumi, scaled_block_sums(x.sc8, y), acc);
    }
};

// --- Q3_K x Q8_K --------------------------------------------------------------------------------

// Elements 32s..32s+31 of a Q3_K block as level + 4 (0..7, unsigned): two low bits from qs, bit 2
// from bit s of hmask.
inline __m256i q3_k_run(const BlockQ3_K& x, __m256i hm, int s) {
    const __m256i q = load(x.qs + 32 * (s / 4));
    const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << s));
    const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), _mm256_set1_epi8(4));
    return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * (s % 4)), _mm256_set1_epi8(3)), high);
}

struct Q3_KFormat {
    using Block = BlockQ3_K;
    static KRow unpack(const BlockQ3_K& b) {
        // the int16 scale of sub-block q in the q-th 128 bits, plus 4k below
        const __m512i scale_index = join(_mm256_set_m128i(_mm_set1_epi16(1), _mm_set1_epi16(0)),
                                         _mm256_set_m128i(_mm_set1_epi16(3), _mm_set1_epi16(2)));
        KRow x;
        x.sc8 = q3_k_scales(b.scales);
        const __m512i sc16 = _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(x.sc8));
        const __m256i hm = load(b.hmask);
        for (int k = 0; k < 4; ++k) {
            x.levels[k] = join(q3_k_run(b, hm, 2 * k), q3_k_run(b, hm, 2 * k + 1));
            const __m512i index = _mm512_add_epi16(scale_index, _mm512_set1_epi16(static_cast<int16_t>(4 * k)));
            x.scales[k] = _mm512_permutexvar_epi16(index, sc16);
        }
        x.d = fp16(b.d);
        return x;
    }
    static void finish(const KRow& x, const BlockQ8_K& y, __m512i sumi, __m512& acc) { finish_with_offset<2>(x, y, sumi, acc); }
};

// --- Q4_K and Q5_K x Q8_K ------------------------------------------------------------------------

// levels[j] holds elements 64j..64j+63: the low nibbles of qs[32j..32j+31], then their high nibbles.
inline void unpack_levels(const BlockQ4_K& x, __m512i (&levels)[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
        const __m256i q = load(x.qs + 32 * j);
        levels[j] = _mm512_and_si512(join(q, _mm256_srli_epi16(q, 4)), m4);  // one mask for both halves
    }
}

// The same plus bit 4 of element 32b + l from bit b of qh[l] (0..31, still unsigned).
inline void unpack_levels(const BlockQ5_K& x, __m512i (&levels)[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i qh = load(x.qh);
    // bit b of each byte moved to bit 4 (the 16-bit shift's spill from the next byte is masked off)
    auto bit4 = [&](int b) { return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, b), one), 4); };
    for (int j = 0; j < 4; ++j) {
        const __m256i q = load(x.qs + 32 * j);
        levels[j] = join(_mm256_or_si256(_mm256_and_si256(q, m4), bit4(2 * j)),
                         _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), bit4(2 * j + 1)));
    }
}

template <typename B>
struct K4Format {
    using Block = B;
    static KRow unpack(const B& b) {
        KRow x;
        uint8_t sc[8];
        int64_t m8;
        unpack_scales_mins_k4(b.scales, sc, reinterpret_cast<uint8_t*>(&m8));
        const __m128i m = _mm_cvtsi64_si128(m8);
        x.mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
        unpack_levels(b, x.levels);
        for (int j = 0; j < 4; ++j) x.scales[j] = join(_mm256_set1_epi16(sc[2 * j]), _mm256_set1_epi16(sc[2 * j + 1]));
        x.d = fp16(b.d);
        x.dmin = fp16(b.dmin);
        return x;
    }
    static void finish(const KRow& x, const BlockQ8_K& y, __m512i sumi, __m512& acc) {
        finish_with_mins(x, y, sumi, _mm256_madd_epi16(x.mins, load(y.bsums)), acc);
    }
};

// --- Q6_K x Q8_K --------------------------------------------------------------------------------

struct Q6_KFormat {
    using Block = BlockQ6_K;
    static KRow unpack(const BlockQ6_K& b) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        const __m256i m3 = _mm256_set1_epi8(3);
        // the int16 scale of sub-block q in the q-th 128 bits, plus 4k below (as Q3_K): one vpermw per 64
        // elements instead of four broadcasts of scalars (which made this tile slower than four vec_dots)
        const __m512i scale_index = join(_mm256_set_m128i(_mm_set1_epi16(1), _mm_set1_epi16(0)),
                                         _mm256_set_m128i(_mm_set1_epi16(3), _mm_set1_epi16(2)));
        KRow x;
        x.sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
        const __m512i sc16 = _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(x.sc8));
        // levels[k]: q in 0..63
        for (int half = 0; half < 2; ++half) {
            // 64 bytes of ql are the low nibbles of quarters 0|1 and, shifted, of quarters 2|3
            const __m512i ql = load512(b.ql + 64 * half);
            const __m256i qh = load(b.qh + 32 * half);
            auto high = [&](int quarter) {
                return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), m3), 4);
            };
            const __m512i low[2] = {_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4)};
            for (int pair = 0; pair < 2; ++pair) {
                const int k = 2 * half + pair, sb = 4 * k;
                x.levels[k] = _mm512_or_si512(low[pair], join(high(2 * pair), high(2 * pair + 1)));
                x.scales[k] = _mm512_permutexvar_epi16(_mm512_add_epi16(scale_index, _mm512_set1_epi16(static_cast<int16_t>(sb))), sc16);
            }
        }
        x.d = fp16(b.d);
        return x;
    }
    static void finish(const KRow& x, const BlockQ8_K& y, __m512i sumi, __m512& acc) { finish_with_offset<5>(x, y, sumi, acc); }
};

template <int NC>
void tile(Kind<BlockQ2_K>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    k_tile<NC, Q2_KFormat>(n, w, stride, a, out);
}
template <int NC>
void tile(Kind<BlockQ3_K>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    k_tile<NC, Q3_KFormat>(n, w, stride, a, out);
}
template <int NC, typename Block>
    requires std::is_same_v<Block, BlockQ4_K> || std::is_same_v<Block, BlockQ5_K>
void tile(Kind<Block>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    k_tile<NC, K4Format<Block>>(n, w, stride, a, out);
}
template <int NC>
void tile(Kind<BlockQ6_K>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    k_tile<NC, Q6_KFormat>(n, w, stride, a, out);
}

}  // namespace

void gemm_q8_0_q8_0_avx512vnni(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out) {
    by_columns(nc, [&](auto c) { vnni_tile<c, Q8_0VnniScheme>(n, w, w_stride, a, out); });
}
void gemm_q4_0_q8_0_avx512vnni(int64_t n, const void* w, size_t w_stride, const void* const* a, int nc, float* out) {
    by_columns(nc, [&](auto c) { vnni_tile<c, Q4_0VnniScheme>(n, w, w_stride, a, out); });
}

}  // namespace quant

#define QUANT_LEVEL(name) name##_avx512
#include "gemm_entries.inc"
