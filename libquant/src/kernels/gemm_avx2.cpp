// AVX2 tile kernels (compiled with -mavx2 -mfma -mf16c; gemm.cpp picks them only where the SIMD level
// is avx2): 4 weight rows times NC activation rows. With 16 vector registers the tile is walked one
// weight row at a time: each of its blocks is unpacked once and multiplied with the NC activation
// rows, whose blocks are read again for each weight row (they stay in L1). Sums stay integer (exact)
// within a block and are scaled into one 8-lane float accumulator per activation row, so every
// output is computed the same way whatever NC is. The integer schemes are dot_avx2.cpp's.
#include "block_common.h"
#include "dot_x86.h"
#include "gemm_kernels.h"
#include "gemm_tiles.h"
#include "quant/float16.h"
#include "quant/gemm.h"

namespace quant {
namespace {

template <typename Block>
inline const Block& block(const void* const* a, int c, int64_t i) {
    return static_cast<const Block*>(a[c])[i];
}

template <int NC>
inline void store(const __m256 (&acc)[NC], int r, float* out) {
    for (int c = 0; c < NC; ++c) out[r * kGemmCols + c] = hsum(acc[c]);
}

// --- Q8_0 and Q4_0 x Q8_0 -----------------------------------------------------------------------

// Signed levels (|level| <= 127) of one 32-block by the sign transfer |w| * (a * sign(w)).
template <int NC>
inline void signed_block(__m256i levels, float dw, const void* const* a, int64_t b, __m256 (&acc)[NC]) {
    const __m256i abs = _mm256_sign_epi8(levels, levels);
    for (int c = 0; c < NC; ++c) {
        const BlockQ8_0& y = block<BlockQ8_0>(a, c, b);
        const __m256i s = dot_u8_i8(abs, _mm256_sign_epi8(load(y.qs), levels));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * fp16(y.d)), acc[c]);
    }
}

template <int NC>
void tile(Kind<BlockQ8_0>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    for (int r = 0; r < kGemmRows; ++r) {
        const BlockQ8_0* x = row_of<BlockQ8_0>(w, stride, r);
        __m256 acc[NC];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / kQK; ++b) signed_block(load(x[b].qs), fp16(x[b].d), a, b, acc);
        store(acc, r, out);
    }
}

template <int NC>
void tile(Kind<BlockQ4_0>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    const __m256i eight = _mm256_set1_epi8(8);
    for (int r = 0; r < kGemmRows; ++r) {
        const BlockQ4_0* x = row_of<BlockQ4_0>(w, stride, r);
        __m256 acc[NC];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / kQK; ++b) {
            signed_block(_mm256_sub_epi8(nibbles32(x[b].qs), eight), fp16(x[b].d), a, b, acc);
        }
        store(acc, r, out);
    }
}

// --- Q4_K and Q5_K x Q8_K ------------------------------------------------------------------------

// Elements 64j..64j+31 (lo) and 64j+32..64j+63 (hi): the low and high nibbles of qs[32j..32j+31].
inline void unpack_levels(const BlockQ4_K& x, int j, __m256i& lo, __m256i& hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i q = load(x.qs + 32 * j);
    lo = _mm256_and_si256(q, m4);
    hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
}

// The same plus bit 4 of element 32b + l from bit b of qh[l] (0..31, still unsigned); the 16-bit
// shift's spill from the next byte is masked off.
inline void unpack_levels(const BlockQ5_K& x, int j, __m256i& lo, __m256i& hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i q = load(x.qs + 32 * j), qh = _mm256_srli_epi16(load(x.qh), 2 * j);
    lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
    hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
}

// Q4_K and Q5_K
template <int NC, typename Block>
    requires std::is_same_v<Block, BlockQ4_K> || std::is_same_v<Block, BlockQ5_K>
void tile(Kind<Block>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    for (int r = 0; r < kGemmRows; ++r) {
        const Block* x = row_of<Block>(w, stride, r);
        __m256 acc[NC];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / kQKK; ++i) {
            // the minimums' sums in scalar code: a vector load of bytes just written one by one would stall
            uint8_t sc[8], m[8];
            unpack_scales_mins_k4(x[i].scales, sc, m);
            __m256i sumi[NC];
            for (auto& v : sumi) v = _mm256_setzero_si256();
            for (int j = 0; j < 4; ++j) {
                __m256i lo, hi;
                unpack_levels(x[i], j, lo, hi);
                const __m256i slo = _mm256_set1_epi16(sc[2 * j]), shi = _mm256_set1_epi16(sc[2 * j + 1]);
                for (int c = 0; c < NC; ++c) {
                    const int8_t* qs = block<BlockQ8_K>(a, c, i).qs + 64 * j;
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load(qs)), slo));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load(qs + 32)), shi));
                }
            }
            const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
            for (int c = 0; c < NC; ++c) {
                const BlockQ8_K& y = block<BlockQ8_K>(a, c, i);
                int summ = 0;
                for (int j = 0; j < 8; ++j) summ += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_set1_ps(d * y.d), acc[c]);
                // taken off per block in the first lane: kept apart, the minimums' total and the
                // accumulators' would be large and cancel
                const __m256 min = _mm256_setr_ps(static_cast<float>(summ), 0, 0, 0, 0, 0, 0, 0);
                acc[c] = _mm256_fnmadd_ps(min, _mm256_set1_ps(dmin * y.d), acc[c]);
            }
        }
        store(acc, r, out);
    }
}

// --- Q2_K x Q8_K --------------------------------------------------------------------------------

template <int NC>
void tile(Kind<BlockQ2_K>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    // byte shuffle of the 16 scales into int16 lanes (index 0x80 in each high byte zeroes it): scale 0
    // in the low 128 bits, 1 in the high, plus 2s below
    const __m256i scale_index = _mm256_set_m128i(_mm_set1_epi16(-0x7FFF), _mm_set1_epi16(-0x8000));
    for (int r = 0; r < kGemmRows; ++r) {
        const BlockQ2_K* x = row_of<BlockQ2_K>(w, stride, r);
        __m256 acc[NC];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / kQKK; ++i) {
            const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
            const __m256i sc4 = _mm256_broadcastsi128_si256(_mm_and_si128(sc, m4));
            __m256i sumi[NC];
            for (auto& v : sumi) v = _mm256_setzero_si256();
            for (int s = 0; s < 8; ++s) {
                // elements 32s..32s+31 (levels 0..3): bit pair s % 4 of a 32-byte run of qs
                const __m256i levels = _mm256_and_si256(_mm256_srli_epi16(load(x[i].qs + 32 * (s / 4)), 2 * (s % 4)), m3);
                const __m256i index = _mm256_add_epi16(scale_index, _mm256_set1_epi16(static_cast<int16_t>(2 * s)));
                const __m256i scales = _mm256_shuffle_epi8(sc4, index);
                for (int c = 0; c < NC; ++c) {
                    const __m256i p = _mm256_maddubs_epi16(levels, load(block<BlockQ8_K>(a, c, i).qs + 32 * s));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(p, scales));
                }
            }
            const __m128i mins = _mm_and_si128(_mm_srli_epi16(sc, 4), m4);
            const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
            for (int c = 0; c < NC; ++c) {
                const BlockQ8_K& y = block<BlockQ8_K>(a, c, i);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_set1_ps(d * y.d), acc[c]);
                acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(scaled_block_sums(mins, y)), _mm256_set1_ps(dmin * y.d), acc[c]);
            }
        }
        store(acc, r, out);
    }
}

// Super-block i of the formats whose levels went in plus 2^kShift (Q3_K: 4, Q6_K: 32): 2^kShift times
// each sub-block's scale times its activation sum taken off the integer sums, then scaled by d.
template <int kShift, int NC>
inline void add_offset_sums(const __m256i (&sumi)[NC], __m128i sc8, float d, const void* const* a, int64_t i,
                            __m256 (&acc)[NC]) {
    for (int c = 0; c < NC; ++c) {
        const BlockQ8_K& y = block<BlockQ8_K>(a, c, i);
        const __m256i total = _mm256_sub_epi32(sumi[c], _mm256_slli_epi32(scaled_block_sums(sc8, y), kShift));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_set1_ps(d * y.d), acc[c]);
    }
}

// --- Q3_K x Q8_K --------------------------------------------------------------------------------

template <int NC>
void tile(Kind<BlockQ3_K>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    // byte shuffle of a half of the 16 int16 scales (0-7 or 8-15): scale 0 in the low 128 bits, 1 in the
    // high, plus 2 (s % 4) scales below
    const __m256i scale_index = _mm256_set_m128i(_mm_set1_epi16(0x0302), _mm_set1_epi16(0x0100));
    for (int r = 0; r < kGemmRows; ++r) {
        const BlockQ3_K* x = row_of<BlockQ3_K>(w, stride, r);
        __m256 acc[NC];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / kQKK; ++i) {
            const __m128i sc8 = q3_k_scales(x[i].scales);
            const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
            const __m256i halves[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                       _mm256_permute2x128_si256(sc16, sc16, 0x11)};
            const __m256i hm = load(x[i].hmask);
            __m256i sumi[NC];
            for (auto& v : sumi) v = _mm256_setzero_si256();
            for (int s = 0; s < 8; ++s) {
                // elements 32s..32s+31 as level + 4 (0..7, unsigned): two low bits from qs, bit 2 from
                // bit s of hmask; the 4 * a comes back out below
                const __m256i q = _mm256_srli_epi16(load(x[i].qs + 32 * (s / 4)), 2 * (s % 4));
                const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << s));
                const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
                const __m256i levels = _mm256_or_si256(_mm256_and_si256(q, m3), high);
                const __m256i index = _mm256_add_epi8(scale_index, _mm256_set1_epi8(static_cast<char>(4 * (s % 4))));
                const __m256i scales = _mm256_shuffle_epi8(halves[s / 4], index);
                for (int c = 0; c < NC; ++c) {
                    const __m256i p = _mm256_maddubs_epi16(levels, load(block<BlockQ8_K>(a, c, i).qs + 32 * s));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(p, scales));
                }
            }
            add_offset_sums<2>(sumi, sc8, fp16(x[i].d), a, i, acc);
        }
        store(acc, r, out);
    }
}

// --- Q6_K x Q8_K --------------------------------------------------------------------------------

template <int NC>
void tile(Kind<BlockQ6_K>, int64_t n, const void* w, size_t stride, const void* const* a, float* out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int r = 0; r < kGemmRows; ++r) {
        const BlockQ6_K* x = row_of<BlockQ6_K>(w, stride, r);
        __m256 acc[NC];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / kQKK; ++i) {
            const int8_t* sc = x[i].scales;
            __m256i sumi[NC];
            for (auto& v : sumi) v = _mm256_setzero_si256();
            for (int half = 0; half < 2; ++half) {
                const __m256i qh = load(x[i].qh + 32 * half);
                for (int quarter = 0; quarter < 4; ++quarter) {
                    // quarters 0|1 are the low nibbles of ql's two 32-byte runs, quarters 2|3 their high ones
                    const __m256i ql = load(x[i].ql + 64 * half + 32 * (quarter % 2));
                    const __m256i low = _mm256_and_si256(quarter < 2 ? ql : _mm256_srli_epi16(ql, 4), m4);
                    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), m3);
                    // levels go in as level + 32 (0..63, unsigned); the 32 * a comes back out below
                    const __m256i levels = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
                    const int sb = 8 * half + 2 * quarter;
                    const __m256i scales = scale_pair(sc[sb], sc[sb + 1]);
                    for (int c = 0; c < NC; ++c) {
                        const __m256i p = _mm256_maddubs_epi16(levels, load(block<BlockQ8_K>(a, c, i).qs + 16 * sb));
                        sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(p, scales));
                    }
                }
            }
            const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
            add_offset_sums<5>(sumi, sc8, fp16(x[i].d), a, i, acc);
        }
        store(acc, r, out);
    }
}

}  // namespace
}  // namespace quant

#define QUANT_LEVEL(name) name##_avx2
#include "gemm_entries.inc"
