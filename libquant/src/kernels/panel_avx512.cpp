// AVX-512 VNNI panel kernels (quant/panel.h): Q4_K and Q6_K weights times Q8_K activations, Q8_0 times Q8_0.
//
// Panel layout, per super-block of 256 inputs (Q8_0: per block of 32), one after the other along the rows:
//   q[64][16][4]  the quants as bytes: vector g holds inputs 4g..4g+3 of each of the 16 rows
//   then the type's scales as 16-lane vectors (one lane per row), documented at each struct.
// pack() reads the 16 rows' blocks with 32-bit gathers (lane r at row r), so each gather yields one
// or two of the q vectors directly; the scales are unpacked with the same word arithmetic as
// unpack_scales_mins_k4, sixteen rows at a time.
#include <cstring>

#include "dot_x86.h"
#include "dot_x86_512.h"
#include "gemm_kernels.h"
#include "quant/blocks.h"
#include "quant/panel.h"

namespace quant {
namespace {

constexpr int P = kPanelRows;
constexpr int kGroups = kQKK / 4;  // 4-input groups in a super-block

// 32-bit words at byte offset `off` of each of the 16 rows (rows `stride` bytes apart).
inline __m512i gather_rows(const uint8_t* base, __m512i row_offsets, size_t off) {
    return _mm512_i32gather_epi32(row_offsets, base + off, 1);
}

inline __m512i row_offsets(size_t stride) {
    const __m512i r = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_mullo_epi32(r, _mm512_set1_epi32(static_cast<int>(stride)));
}

// 16 IEEE halves in the low (shift 0) or high (shift 16) half of each 32-bit lane, as floats.
inline __m512 halves(__m512i v, int shift) {
    const __m512i h = _mm512_and_si512(_mm512_srli_epi32(v, static_cast<unsigned>(shift)), _mm512_set1_epi32(0xffff));
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
}

inline __m512i byte_lane(__m512i v, int i) {  // byte i (0..3) of each lane, zero-extended
    return _mm512_and_si512(_mm512_srli_epi32(v, static_cast<unsigned>(8 * i)), _mm512_set1_epi32(0xff));
}

inline __m512i sbyte_lane(__m512i v, int i) {  // byte i of each lane, sign-extended
    return _mm512_srai_epi32(_mm512_slli_epi32(v, static_cast<unsigned>(24 - 8 * i)), 24);
}

inline __m512i bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

template <int NC>
inline void store_rows(const __m512 (&acc)[NC], float* const* out) {
    for (int c = 0; c < NC; ++c) _mm512_storeu_ps(out[c], acc[c]);
}

// ---- Q4_K: x = d * sc * q - dmin * m, 8 sub-blocks of 32 ---------------------------------------

struct PanelQ4K {
    uint8_t q[kGroups][P * 4];
    int32_t sc[8][P];       // sub-block scales
    int32_t mins[4][P];     // mins of sub-blocks 2j and 2j+1 as an int16 pair (for vpdpwssd)
    float d[P], dmin[P];
};
static_assert(sizeof(PanelQ4K) % 64 == 0);

size_t q4_k_bytes(int64_t n) { return static_cast<size_t>(n / kQKK) * sizeof(PanelQ4K); }

void q4_k_pack(int64_t n, const void* w, size_t stride, void* panel) {
    const __m512i rows = row_offsets(stride);
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    auto* out = static_cast<PanelQ4K*>(panel);
    for (int64_t b = 0; b < n / kQKK; ++b, ++out) {
        const uint8_t* base = static_cast<const uint8_t*>(w) + b * sizeof(BlockQ4_K);
        const __m512i dd = gather_rows(base, rows, offsetof(BlockQ4_K, d));
        _mm512_store_ps(out->d, halves(dd, 0));
        _mm512_store_ps(out->dmin, halves(dd, 16));
        const size_t s = offsetof(BlockQ4_K, scales);
        const __m512i u0 = gather_rows(base, rows, s), u1 = gather_rows(base, rows, s + 4),
                      u2 = gather_rows(base, rows, s + 8);
        const __m512i m6 = _mm512_set1_epi32(0x3f3f3f3f), m4 = _mm512_set1_epi32(0x0f0f0f0f),
                      hi2 = _mm512_set1_epi32(0x30303030);
        const __m512i words[4] = {
            _mm512_and_si512(u0, m6),
            _mm512_or_si512(_mm512_and_si512(u2, m4), _mm512_and_si512(_mm512_srli_epi32(u0, 2), hi2)),
            _mm512_and_si512(u1, m6),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m4), _mm512_and_si512(_mm512_srli_epi32(u1, 2), hi2))};
        for (int j = 0; j < 8; ++j) _mm512_store_si512(out->sc[j], byte_lane(words[j / 4], j % 4));
        for (int j = 0; j < 4; ++j) {
            const __m512i m = words[2 + j / 2];
            const __m512i pair = _mm512_or_si512(byte_lane(m, 2 * (j % 2)), _mm512_slli_epi32(byte_lane(m, 2 * (j % 2) + 1), 16));
            _mm512_store_si512(out->mins[j], pair);
        }
        // 64 inputs per 32 bytes of qs: byte i holds input i (low nibble) and input 32 + i (high)
        for (int chunk = 0; chunk < 4; ++chunk) {
            for (int g = 0; g < 8; ++g) {
                const __m512i v = gather_rows(base, rows, offsetof(BlockQ4_K, qs) + 32 * chunk + 4 * g);
                _mm512_store_si512(out->q[16 * chunk + g], _mm512_and_si512(v, low4));
                _mm512_store_si512(out->q[16 * chunk + 8 + g], _mm512_and_si512(_mm512_srli_epi32(v, 4), low4));
            }
        }
    }
}

template <int NC>
void q4_k_panel(int64_t n, const void* panel, const void* const* a, float* const* out) {
    __m512 acc[NC];
    for (auto& v : acc) v = _mm512_setzero_ps();
    const auto* p = static_cast<const PanelQ4K*>(panel);
    for (int64_t b = 0; b < n / kQKK; ++b, ++p) {
        const BlockQ8_K* y[NC];
        for (int c = 0; c < NC; ++c) y[c] = static_cast<const BlockQ8_K*>(a[c]) + b;
        __m512i isum[NC];
        for (auto& v : isum) v = _mm512_setzero_si512();
        for (int s = 0; s < 8; ++s) {
            __m512i t[NC];
            for (auto& v : t) v = _mm512_setzero_si512();
            for (int g = 0; g < 8; ++g) {
                const __m512i q = _mm512_load_si512(p->q[8 * s + g]);
                for (int c = 0; c < NC; ++c) t[c] = _mm512_dpbusd_epi32(t[c], q, bcast32(y[c]->qs + 32 * s + 4 * g));
            }
            const __m512i sc = _mm512_load_si512(p->sc[s]);
            for (int c = 0; c < NC; ++c) isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(t[c], sc));
        }
        const __m512 d = _mm512_load_ps(p->d), dmin = _mm512_load_ps(p->dmin);
        for (int c = 0; c < NC; ++c) {
            // the activation sums of sub-blocks 2j and 2j+1 as an int16 pair (each fits: |sum| <= 32 * 128)
            int16_t pairs[8];
            for (int j = 0; j < 8; ++j) pairs[j] = static_cast<int16_t>(y[c]->bsums[2 * j] + y[c]->bsums[2 * j + 1]);
            __m512i m = _mm512_setzero_si512();
            for (int j = 0; j < 4; ++j) m = _mm512_dpwssd_epi32(m, _mm512_load_si512(p->mins[j]), bcast32(pairs + 2 * j));
            // rounded as the scalar dot rounds: da * (d * sumi - dmin * summ), added per super-block
            const __m512 t = _mm512_sub_ps(_mm512_mul_ps(d, to_float(isum[c])), _mm512_mul_ps(dmin, to_float(m)));
            acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(_mm512_set1_ps(y[c]->d), t));
        }
    }
    store_rows(acc, out);
}

// ---- Q6_K: x = d * sc * (q - 32), 16 sub-blocks of 16 -------------------------------------------

struct PanelQ6K {
    uint8_t q[kGroups][P * 4];  // q in 0..63
    int32_t sc[16][P];          // sub-block scales, sign-extended
    int32_t sc_pairs[8][P];     // scales of sub-blocks 2j and 2j+1 as an int16 pair (for vpdpwssd)
    float d[P];
};
static_assert(sizeof(PanelQ6K) % 64 == 0);

size_t q6_k_bytes(int64_t n) { return static_cast<size_t>(n / kQKK) * sizeof(PanelQ6K); }

void q6_k_pack(int64_t n, const void* w, size_t stride, void* panel) {
    const __m512i rows = row_offsets(stride);
    const __m512i m4 = _mm512_set1_epi8(0x0f), b01 = _mm512_set1_epi8(0x03), b23 = _mm512_set1_epi8(0x0c),
                  b45 = _mm512_set1_epi8(0x30);
    auto* out = static_cast<PanelQ6K*>(panel);
    for (int64_t b = 0; b < n / kQKK; ++b, ++out) {
        const uint8_t* base = static_cast<const uint8_t*>(w) + b * sizeof(BlockQ6_K);
        // d is the block's last two bytes: the word that ends there, so the gather stays inside the block
        _mm512_store_ps(out->d, halves(gather_rows(base, rows, offsetof(BlockQ6_K, d) - 2), 16));
        __m512i sw[4];
        for (int i = 0; i < 4; ++i) sw[i] = gather_rows(base, rows, offsetof(BlockQ6_K, scales) + 4 * i);
        for (int j = 0; j < 16; ++j) _mm512_store_si512(out->sc[j], sbyte_lane(sw[j / 4], j % 4));
        for (int j = 0; j < 8; ++j) {
            const __m512i lo = sbyte_lane(sw[j / 2], 2 * (j % 2)), hi = sbyte_lane(sw[j / 2], 2 * (j % 2) + 1);
            _mm512_store_si512(out->sc_pairs[j],
                               _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(hi, 16)));
        }
        // per 128 inputs: ql[64] and qh[32]; input l (< 32) of each quarter from ql[l] / ql[32 + l],
        // low or high nibble, and two bits of qh[l]
        for (int half = 0; half < 2; ++half) {
            for (int g = 0; g < 8; ++g) {
                const size_t ql = offsetof(BlockQ6_K, ql) + 64 * half + 4 * g;
                const __m512i A = gather_rows(base, rows, ql), B = gather_rows(base, rows, ql + 32);
                const __m512i H = gather_rows(base, rows, offsetof(BlockQ6_K, qh) + 32 * half + 4 * g);
                const int g0 = 32 * half + g;
                _mm512_store_si512(out->q[g0], _mm512_or_si512(_mm512_and_si512(A, m4), _mm512_slli_epi32(_mm512_and_si512(H, b01), 4)));
                _mm512_store_si512(out->q[g0 + 8], _mm512_or_si512(_mm512_and_si512(B, m4), _mm512_slli_epi32(_mm512_and_si512(H, b23), 2)));
                _mm512_store_si512(out->q[g0 + 16], _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(A, 4), m4), _mm512_and_si512(H, b45)));
                _mm512_store_si512(out->q[g0 + 24],
                                   _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(B, 4), m4), _mm512_and_si512(_mm512_srli_epi32(H, 2), b45)));
            }
        }
    }
}

template <int NC>
void q6_k_panel(int64_t n, const void* panel, const void* const* a, float* const* out) {
    __m512 acc[NC];
    for (auto& v : acc) v = _mm512_setzero_ps();
    const auto* p = static_cast<const PanelQ6K*>(panel);
    for (int64_t b = 0; b < n / kQKK; ++b, ++p) {
        const BlockQ8_K* y[NC];
        for (int c = 0; c < NC; ++c) y[c] = static_cast<const BlockQ8_K*>(a[c]) + b;
        __m512i isum[NC];
        for (auto& v : isum) v = _mm512_setzero_si512();
        for (int s = 0; s < 16; ++s) {
            __m512i t[NC];
            for (auto& v : t) v = _mm512_setzero_si512();
            for (int g = 0; g < 4; ++g) {
                const __m512i q = _mm512_load_si512(p->q[4 * s + g]);
                for (int c = 0; c < NC; ++c) t[c] = _mm512_dpbusd_epi32(t[c], q, bcast32(y[c]->qs + 16 * s + 4 * g));
            }
            const __m512i sc = _mm512_load_si512(p->sc[s]);
            for (int c = 0; c < NC; ++c) isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(t[c], sc));
        }
        const __m512 d = _mm512_load_ps(p->d);
        for (int c = 0; c < NC; ++c) {
            // sum of sc * (q - 32) * a = sum of sc * q * a - 32 * sum of sc * (sums of a per 16)
            __m512i o = _mm512_setzero_si512();
            for (int j = 0; j < 8; ++j) o = _mm512_dpwssd_epi32(o, _mm512_load_si512(p->sc_pairs[j]), bcast32(y[c]->bsums + 2 * j));
            const __m512i total = _mm512_sub_epi32(isum[c], _mm512_slli_epi32(o, 5));
            // rounded as the scalar dot rounds: (d * da) * sumi, added per super-block
            acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(_mm512_mul_ps(d, _mm512_set1_ps(y[c]->d)), to_float(total)));
        }
    }
    store_rows(acc, out);
}

// ---- Q8_0: x = d * q, blocks of 32 ---------------------------------------------------------------

// vpdpbusd takes unsigned bytes on one side: the activations are flipped to a + 128 (a xor 0x80) per
// block, and 128 times each weight row's block sum, kept in the panel, comes off again.
struct PanelQ8_0 {
    int8_t q[kQK / 4][P * 4];
    int32_t sums128[P];  // 128 * the sum of the row's 32 quants
    float d[P];
};
static_assert(sizeof(PanelQ8_0) % 64 == 0);

size_t q8_0_bytes(int64_t n) { return static_cast<size_t>(n / kQK) * sizeof(PanelQ8_0); }

void q8_0_pack(int64_t n, const void* w, size_t stride, void* panel) {
    const __m512i rows = row_offsets(stride);
    const __m512i ones = _mm512_set1_epi8(1);
    auto* out = static_cast<PanelQ8_0*>(panel);
    for (int64_t b = 0; b < n / kQK; ++b, ++out) {
        const uint8_t* base = static_cast<const uint8_t*>(w) + b * sizeof(BlockQ8_0);
        _mm512_store_ps(out->d, halves(gather_rows(base, rows, offsetof(BlockQ8_0, d)), 0));
        __m512i sum = _mm512_setzero_si512();
        for (int g = 0; g < kQK / 4; ++g) {
            const __m512i v = gather_rows(base, rows, offsetof(BlockQ8_0, qs) + 4 * g);
            _mm512_store_si512(out->q[g], v);
            sum = _mm512_dpbusd_epi32(sum, ones, v);
        }
        _mm512_store_si512(out->sums128, _mm512_slli_epi32(sum, 7));
    }
}

template <int NC>
void q8_0_panel(int64_t n, const void* panel, const void* const* a, float* const* out) {
    __m512 acc[NC];
    for (auto& v : acc) v = _mm512_setzero_ps();
    const auto* p = static_cast<const PanelQ8_0*>(panel);
    alignas(32) uint8_t flipped[NC][kQK];
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t b = 0; b < n / kQK; ++b, ++p) {
        const BlockQ8_0* y[NC];
        for (int c = 0; c < NC; ++c) {
            y[c] = static_cast<const BlockQ8_0*>(a[c]) + b;
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[c]->qs));
            _mm256_store_si256(reinterpret_cast<__m256i*>(flipped[c]), _mm256_xor_si256(v, bias));
        }
        __m512i t[NC];
        for (auto& v : t) v = _mm512_setzero_si512();
        for (int g = 0; g < kQK / 4; ++g) {
            const __m512i q = _mm512_load_si512(p->q[g]);
            for (int c = 0; c < NC; ++c) t[c] = _mm512_dpbusd_epi32(t[c], bcast32(flipped[c] + 4 * g), q);
        }
        const __m512i sums128 = _mm512_load_si512(p->sums128);
        const __m512 d = _mm512_load_ps(p->d);
        for (int c = 0; c < NC; ++c) {
            // rounded as the scalar dot rounds: sumi * (dw * da), added per block
            const __m512 da = _mm512_set1_ps(fp16(y[c]->d));
            acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(to_float(_mm512_sub_epi32(t[c], sums128)), _mm512_mul_ps(d, da)));
        }
    }
    store_rows(acc, out);
}

template <int NC>
struct Q4KPanel {
    static void run(int64_t n, const void* p, const void* const* a, float* const* o) { q4_k_panel<NC>(n, p, a, o); }
};
template <int NC>
struct Q6KPanel {
    static void run(int64_t n, const void* p, const void* const* a, float* const* o) { q6_k_panel<NC>(n, p, a, o); }
};

template <int NC>
struct Q8_0Panel {
    static void run(int64_t n, const void* p, const void* const* a, float* const* o) { q8_0_panel<NC>(n, p, a, o); }
};

// Calls K<NC>::run with NC the constant for nc (1..kPanelCols).
template <template <int> class K>
void by_panel_cols(int64_t n, const void* panel, const void* const* a, int nc, float* const* out) {
    switch (nc) {
        case 1: return K<1>::run(n, panel, a, out);
        case 2: return K<2>::run(n, panel, a, out);
        case 3: return K<3>::run(n, panel, a, out);
        case 4: return K<4>::run(n, panel, a, out);
        case 5: return K<5>::run(n, panel, a, out);
        case 6: return K<6>::run(n, panel, a, out);
        case 7: return K<7>::run(n, panel, a, out);
        default: return K<8>::run(n, panel, a, out);
    }
}

}  // namespace

extern const PanelKernels panel_q4_k_avx512vnni;
extern const PanelKernels panel_q6_k_avx512vnni;
extern const PanelKernels panel_q8_0_avx512vnni;
const PanelKernels panel_q4_k_avx512vnni{q4_k_bytes, q4_k_pack, by_panel_cols<Q4KPanel>};
const PanelKernels panel_q6_k_avx512vnni{q6_k_bytes, q6_k_pack, by_panel_cols<Q6KPanel>};
const PanelKernels panel_q8_0_avx512vnni{q8_0_bytes, q8_0_pack, by_panel_cols<Q8_0Panel>};

}  // namespace quant
