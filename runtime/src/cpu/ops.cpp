#include "ops.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>
#include <cmath>
#include <cstring>

#include "quant/float16.h"
#include "simd.h"

namespace runtime::cpu {

void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
    // the sum of squares in double: it is the one reduction whose rounding grows with the width
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void rope(float* head, const float* cos, const float* sin, int n_rot, RopeMode mode) {
    const int half = n_rot / 2;
    if (mode == RopeMode::Adjacent) {
        for (int i = 0; i < half; ++i) {
            const float x0 = head[2 * i], x1 = head[2 * i + 1];
            head[2 * i] = x0 * cos[i] - x1 * sin[i];
            head[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
        }
    } else {
        for (int i = 0; i < half; ++i) {
            const float x0 = head[i], x1 = head[i + half];
            head[i] = x0 * cos[i] - x1 * sin[i];
            head[i + half] = x0 * sin[i] + x1 * cos[i];
        }
    }
}

void softmax(float* x, int64_t n) {
    float mx = x[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

namespace {

// e^x without branches, so that loops over it vectorize: x = n ln2 + r with |r| <= ln2/2, e^r by
// Cephes' expf polynomial (about 1 ulp), 2^n put into the exponent bits. x is clamped to [-87, 88]:
// below, the result is e^-87 (~1.6e-38), which a softmax sum or a SiLU cannot tell from 0; above,
// e^88 (~1.7e38), where 1 + e^x is as good as infinite.
inline float exp_clamped(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = p * r * r + r + 1.0f;
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, 4);
    return e * scale;
}

constexpr int kPositions = 128;  // scores kept in registers while the head dimensions are summed
constexpr int kDims = 32;        // value dimensions kept in registers while the positions are summed
constexpr int kLanes = 4;        // independent accumulators of the value sum (FMA latency)
constexpr int kVec = kAttendPad;  // lanes of the reductions and the last score chunk (a multiple of any vector width)

// scores[p0 .. p0+W) = q.k over the head dimensions in order, the W sums in registers.
template <int W>
__attribute__((always_inline)) inline void score_chunk(const float* q, float scale, const float* kt, int64_t ld, int hd,
                                                       int p0, float* __restrict scores) {
    float acc[W] = {};
    for (int d = 0; d < hd; ++d) {
        const float qd = q[d] * scale;
        const float* k = kt + d * ld + p0;
        for (int j = 0; j < W; ++j) acc[j] += qd * k[j];
    }
    for (int j = 0; j < W; ++j) scores[p0 + j] = acc[j];
}

// softmax over scores[0, n_kv) in place, in attend_body's order; returns 1 / the sum of the exponentials.
// A sink (gpt-oss) is one more logit in the max and the sum that has no value row.
__attribute__((always_inline)) inline float softmax_scores(float* __restrict scores, int n_kv, const float* sink) {
    float mx_lanes[kVec];
    for (int j = 0; j < kVec; ++j) mx_lanes[j] = scores[0];
    int p = 0;
    for (; p + kVec <= n_kv; p += kVec) {
        for (int j = 0; j < kVec; ++j) mx_lanes[j] = std::max(mx_lanes[j], scores[p + j]);
    }
    float mx = mx_lanes[0];
    for (int j = 1; j < kVec; ++j) mx = std::max(mx, mx_lanes[j]);
    for (; p < n_kv; ++p) mx = std::max(mx, scores[p]);
    if (sink) mx = std::max(mx, *sink);
    float sum_lanes[kVec] = {};
    for (p = 0; p + kVec <= n_kv; p += kVec) {
        for (int j = 0; j < kVec; ++j) {
            scores[p + j] = exp_clamped(scores[p + j] - mx);
            sum_lanes[j] += scores[p + j];
        }
    }
    float sum = 0.0f;
    for (int j = 0; j < kVec; ++j) sum += sum_lanes[j];
    for (; p < n_kv; ++p) {
        scores[p] = exp_clamped(scores[p] - mx);
        sum += scores[p];
    }
    if (sink) sum += exp_clamped(*sink - mx);
    return 1.0f / sum;
}

// The body of attend, compiled once per instruction set by the wrappers below (always_inline puts
// it inside each target-specific function, where the loops vectorize for that target).
__attribute__((always_inline)) inline void attend_body(const float* q, float scale, const float* kt, int64_t ld,
                                                       int hd, const float* v, int hdv, int n_kv,
                                                       float* __restrict scores, float* __restrict out,
                                                       const float* sink) {
    int p0 = 0;
    for (; p0 + kPositions <= n_kv; p0 += kPositions) score_chunk<kPositions>(q, scale, kt, ld, hd, p0, scores);
    // the last chunk may run past n_kv up to a multiple of kVec: the caller pads kt and scores for it
    for (; p0 < n_kv; p0 += kVec) score_chunk<kVec>(q, scale, kt, ld, hd, p0, scores);
    // softmax; the reductions keep kVec partial results (vectorizable without reassociating floats)
    const float inv = softmax_scores(scores, n_kv, sink);
    int p = 0;
    // out = the weighted sum of the value rows: position p goes to accumulator p % kLanes
    int d0 = 0;
    for (; d0 + kDims <= hdv; d0 += kDims) {
        float acc[kLanes][kDims] = {};
        for (p = 0; p + kLanes <= n_kv; p += kLanes) {
            for (int l = 0; l < kLanes; ++l) {
                const float s = scores[p + l];
                const float* vr = v + static_cast<int64_t>(p + l) * hdv + d0;
                for (int j = 0; j < kDims; ++j) acc[l][j] += s * vr[j];
            }
        }
        for (; p < n_kv; ++p) {
            const float s = scores[p];
            const float* vr = v + static_cast<int64_t>(p) * hdv + d0;
            for (int j = 0; j < kDims; ++j) acc[0][j] += s * vr[j];
        }
        for (int j = 0; j < kDims; ++j) out[d0 + j] = ((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j])) * inv;
    }
    for (int d = d0; d < hdv; ++d) {
        float acc = 0.0f;
        for (p = 0; p < n_kv; ++p) acc += scores[p] * v[static_cast<int64_t>(p) * hdv + d];
        out[d] = acc * inv;
    }
}

// R query rows against the same keys and values (the heads of one KV group, one token): each key and
// value row is loaded once for all R instead of once per head, which is what long prompts need (a
// 4096-position group reads 4 MB of K and V per query). Every sum runs in attend_body's order, so each
// row's output is bit-identical to attend()'s.
constexpr int kGroupPositions = 32;  // R x 32 scores in registers while the head dimensions are summed
constexpr int kGroupDims = 16;       // value dimensions per pass: 4 rows x kLanes x 16 in registers

template <int R, int W>
__attribute__((always_inline)) inline void score_rows(const float* const* q, float scale, const float* kt, int64_t ld,
                                                      int hd, int p0, float* __restrict scores, int64_t lds) {
    float acc[R][W] = {};
    for (int d = 0; d < hd; ++d) {
        const float* k = kt + d * ld + p0;
        for (int r = 0; r < R; ++r) {
            const float qd = q[r][d] * scale;
            for (int j = 0; j < W; ++j) acc[r][j] += qd * k[j];
        }
    }
    for (int r = 0; r < R; ++r) {
        for (int j = 0; j < W; ++j) scores[r * lds + p0 + j] = acc[r][j];
    }
}

// out_r += the value rows weighted by rows r0..r0+RV of scores, dims [d0, d0 + kGroupDims)
template <int RV>
__attribute__((always_inline)) inline void value_rows(const float* scores, int64_t lds, const float* inv, const float* v,
                                                      int hdv, int n_kv, int d0, float* const* out) {
    float acc[RV][kLanes][kGroupDims] = {};
    int p = 0;
    for (; p + kLanes <= n_kv; p += kLanes) {
        for (int l = 0; l < kLanes; ++l) {
            const float* vr = v + static_cast<int64_t>(p + l) * hdv + d0;
            for (int r = 0; r < RV; ++r) {
                const float s = scores[r * lds + p + l];
                for (int j = 0; j < kGroupDims; ++j) acc[r][l][j] += s * vr[j];
            }
        }
    }
    for (; p < n_kv; ++p) {
        const float* vr = v + static_cast<int64_t>(p) * hdv + d0;
        for (int r = 0; r < RV; ++r) {
            const float s = scores[r * lds + p];
            for (int j = 0; j < kGroupDims; ++j) acc[r][0][j] += s * vr[j];
        }
    }
    for (int r = 0; r < RV; ++r) {
        for (int j = 0; j < kGroupDims; ++j) {
            out[r][d0 + j] = ((acc[r][0][j] + acc[r][1][j]) + (acc[r][2][j] + acc[r][3][j])) * inv[r];
        }
    }
}

// value_rows<4> with the 16 accumulators named as vectors: GCC keeps the generic version's array in
// memory (a load and a store around every FMA). Same operations in the same order, so the same bits.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
RT_TARGET_AVX512 void value_rows4_avx512(const float* scores, int64_t lds, const float* inv, const float* v, int hdv,
                                         int n_kv, int d0, float* const* out) {
    static_assert(kLanes == 4 && kGroupDims == 16);
    __m512 acc[4][kLanes];
    for (auto& r : acc) {
        for (auto& a : r) a = _mm512_setzero_ps();
    }
    const float* s0 = scores;
    const float* s1 = scores + lds;
    const float* s2 = scores + 2 * lds;
    const float* s3 = scores + 3 * lds;
    int p = 0;
    for (; p + kLanes <= n_kv; p += kLanes) {
        const float* vp = v + static_cast<int64_t>(p) * hdv + d0;
        const __m512 v0 = _mm512_loadu_ps(vp), v1 = _mm512_loadu_ps(vp + hdv), v2 = _mm512_loadu_ps(vp + 2 * hdv),
                     v3 = _mm512_loadu_ps(vp + 3 * hdv);
        acc[0][0] = _mm512_fmadd_ps(_mm512_set1_ps(s0[p]), v0, acc[0][0]);
        acc[1][0] = _mm512_fmadd_ps(_mm512_set1_ps(s1[p]), v0, acc[1][0]);
        acc[2][0] = _mm512_fmadd_ps(_mm512_set1_ps(s2[p]), v0, acc[2][0]);
        acc[3][0] = _mm512_fmadd_ps(_mm512_set1_ps(s3[p]), v0, acc[3][0]);
        acc[0][1] = _mm512_fmadd_ps(_mm512_set1_ps(s0[p + 1]), v1, acc[0][1]);
        acc[1][1] = _mm512_fmadd_ps(_mm512_set1_ps(s1[p + 1]), v1, acc[1][1]);
        acc[2][1] = _mm512_fmadd_ps(_mm512_set1_ps(s2[p + 1]), v1, acc[2][1]);
        acc[3][1] = _mm512_fmadd_ps(_mm512_set1_ps(s3[p + 1]), v1, acc[3][1]);
        acc[0][2] = _mm512_fmadd_ps(_mm512_set1_ps(s0[p + 2]), v2, acc[0][2]);
        acc[1][2] = _mm512_fmadd_ps(_mm512_set1_ps(s1[p + 2]), v2, acc[1][2]);
        acc[2][2] = _mm512_fmadd_ps(_mm512_set1_ps(s2[p + 2]), v2, acc[2][2]);
        acc[3][2] = _mm512_fmadd_ps(_mm512_set1_ps(s3[p + 2]), v2, acc[3][2]);
        acc[0][3] = _mm512_fmadd_ps(_mm512_set1_ps(s0[p + 3]), v3, acc[0][3]);
        acc[1][3] = _mm512_fmadd_ps(_mm512_set1_ps(s1[p + 3]), v3, acc[1][3]);
        acc[2][3] = _mm512_fmadd_ps(_mm512_set1_ps(s2[p + 3]), v3, acc[2][3]);
        acc[3][3] = _mm512_fmadd_ps(_mm512_set1_ps(s3[p + 3]), v3, acc[3][3]);
    }
    for (; p < n_kv; ++p) {
        const __m512 vr = _mm512_loadu_ps(v + static_cast<int64_t>(p) * hdv + d0);
        acc[0][0] = _mm512_fmadd_ps(_mm512_set1_ps(s0[p]), vr, acc[0][0]);
        acc[1][0] = _mm512_fmadd_ps(_mm512_set1_ps(s1[p]), vr, acc[1][0]);
        acc[2][0] = _mm512_fmadd_ps(_mm512_set1_ps(s2[p]), vr, acc[2][0]);
        acc[3][0] = _mm512_fmadd_ps(_mm512_set1_ps(s3[p]), vr, acc[3][0]);
    }
    for (int r = 0; r < 4; ++r) {
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3]));
        _mm512_storeu_ps(out[r] + d0, _mm512_mul_ps(sum, _mm512_set1_ps(inv[r])));
    }
}
#pragma GCC diagnostic pop

template <int R, bool kAvx512 = false>
__attribute__((always_inline)) inline void attend_rows_body(const float* const* q, float scale, const float* kt,
                                                            int64_t ld, int hd, const float* v, int hdv, int n_kv,
                                                            float* __restrict scores, int64_t lds, float* const* out,
                                                            const float* sinks) {
    int p0 = 0;
    for (; p0 + kGroupPositions <= n_kv; p0 += kGroupPositions) {
        score_rows<R, kGroupPositions>(q, scale, kt, ld, hd, p0, scores, lds);
    }
    for (; p0 < n_kv; p0 += kVec) score_rows<R, kVec>(q, scale, kt, ld, hd, p0, scores, lds);
    float inv[R];
    for (int r = 0; r < R; ++r) inv[r] = softmax_scores(scores + r * lds, n_kv, sinks ? sinks + r : nullptr);
    // dims attend_body sums in lanes (whole kDims runs), then the rest one by one as it does
    const int lane_dims = hdv / kDims * kDims;
    for (int d0 = 0; d0 < lane_dims; d0 += kGroupDims) {
        int r = 0;
        for (; r + 4 <= R; r += 4) {
            if constexpr (kAvx512) {
                value_rows4_avx512(scores + r * lds, lds, inv + r, v, hdv, n_kv, d0, out + r);
            } else {
                value_rows<4>(scores + r * lds, lds, inv + r, v, hdv, n_kv, d0, out + r);
            }
        }
        for (; r < R; ++r) value_rows<1>(scores + r * lds, lds, inv + r, v, hdv, n_kv, d0, out + r);
    }
    for (int r = 0; r < R; ++r) {
        const float* sr = scores + r * lds;
        for (int d = lane_dims; d < hdv; ++d) {
            float acc = 0.0f;
            for (int p = 0; p < n_kv; ++p) acc += sr[p] * v[static_cast<int64_t>(p) * hdv + d];
            out[r][d] = acc * inv[r];
        }
    }
}

RT_TARGET_AVX2 void f16_to_f32_f16c(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
    for (; i < n; ++i) dst[i] = quant::f16_to_f32(src[i]);
}

__attribute__((always_inline)) inline void swiglu_body(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + exp_clamped(-g)) * up[i];
    }
}

// GCC vectorizes for AVX-512 with 256-bit vectors unless told otherwise
#define RT_TARGET_AVX512_WIDE \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c,prefer-vector-width=512")))

RT_TARGET_AVX512_WIDE void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n) {
    swiglu_body(gate, up, out, n);
}

RT_TARGET_AVX2 void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
    swiglu_body(gate, up, out, n);
}

RT_TARGET_AVX512_WIDE void attend_avx512(const float* q, float scale, const float* kt, int64_t ld, int hd, const float* v,
                                    int hdv, int n_kv, float* scores, float* out, const float* sink) {
    attend_body(q, scale, kt, ld, hd, v, hdv, n_kv, scores, out, sink);
}

template <int R>
RT_TARGET_AVX512_WIDE void attend_rows_avx512(const float* const* q, float scale, const float* kt, int64_t ld, int hd,
                                           const float* v, int hdv, int n_kv, float* scores, int64_t lds, float* const* out,
                                           const float* sinks) {
    attend_rows_body<R, true>(q, scale, kt, ld, hd, v, hdv, n_kv, scores, lds, out, sinks);
}

template <int R>
RT_TARGET_AVX2 void attend_rows_avx2(const float* const* q, float scale, const float* kt, int64_t ld, int hd,
                                     const float* v, int hdv, int n_kv, float* scores, int64_t lds, float* const* out,
                                     const float* sinks) {
    attend_rows_body<R>(q, scale, kt, ld, hd, v, hdv, n_kv, scores, lds, out, sinks);
}

template <int R>
void attend_rows_scalar(const float* const* q, float scale, const float* kt, int64_t ld, int hd, const float* v, int hdv,
                        int n_kv, float* scores, int64_t lds, float* const* out, const float* sinks) {
    attend_rows_body<R>(q, scale, kt, ld, hd, v, hdv, n_kv, scores, lds, out, sinks);
}

using AttendRowsFn = void (*)(const float* const*, float, const float*, int64_t, int, const float*, int, int, float*,
                              int64_t, float* const*, const float*);

template <template <int> class Pick, int... R>
constexpr std::array<AttendRowsFn, sizeof...(R)> rows_table(std::integer_sequence<int, R...>) {
    return {Pick<R + 1>::fn...};
}
template <int R>
struct PickAvx512 {
    static constexpr AttendRowsFn fn = attend_rows_avx512<R>;
};
template <int R>
struct PickAvx2 {
    static constexpr AttendRowsFn fn = attend_rows_avx2<R>;
};
template <int R>
struct PickScalar {
    static constexpr AttendRowsFn fn = attend_rows_scalar<R>;
};

RT_TARGET_AVX2 void attend_avx2(const float* q, float scale, const float* kt, int64_t ld, int hd, const float* v,
                                int hdv, int n_kv, float* scores, float* out, const float* sink) {
    attend_body(q, scale, kt, ld, hd, v, hdv, n_kv, scores, out, sink);
}

}  // namespace

void attend(const float* q, float scale, const float* kt, int64_t ld, int hd, const float* v, int hdv, int n_kv,
            float* scores, float* out, const float* sink) {
    switch (simd()) {
        case Simd::Avx512: return attend_avx512(q, scale, kt, ld, hd, v, hdv, n_kv, scores, out, sink);
        case Simd::Avx2: return attend_avx2(q, scale, kt, ld, hd, v, hdv, n_kv, scores, out, sink);
        case Simd::Scalar: return attend_body(q, scale, kt, ld, hd, v, hdv, n_kv, scores, out, sink);
    }
}

bool attend_rows_pays(int n_rows) { return simd() == Simd::Avx512 && n_rows % 4 == 0; }

void attend_rows(int n_rows, const float* const* q, float scale, const float* kt, int64_t ld, int hd, const float* v,
                 int hdv, int n_kv, float* scores, int64_t lds, float* const* out, const float* sinks) {
    static const auto avx512 = rows_table<PickAvx512>(std::make_integer_sequence<int, kAttendRows>{});
    static const auto avx2 = rows_table<PickAvx2>(std::make_integer_sequence<int, kAttendRows>{});
    static const auto scalar = rows_table<PickScalar>(std::make_integer_sequence<int, kAttendRows>{});
    const auto& table = simd() == Simd::Avx512 ? avx512 : simd() == Simd::Avx2 ? avx2 : scalar;
    for (int r0 = 0; r0 < n_rows; r0 += kAttendRows) {
        const int r = std::min(kAttendRows, n_rows - r0);
        table[static_cast<size_t>(r - 1)](q + r0, scale, kt, ld, hd, v, hdv, n_kv, scores, lds, out + r0,
                                          sinks ? sinks + r0 : nullptr);
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    switch (simd()) {
        case Simd::Avx512: return swiglu_avx512(gate, up, out, n);
        case Simd::Avx2: return swiglu_avx2(gate, up, out, n);
        case Simd::Scalar: return swiglu_body(gate, up, out, n);
    }
}

void swiglu_oai(const float* gate, const float* up, float* out, int64_t n, float alpha, float limit) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], limit);
        const float u = std::clamp(up[i], -limit, limit);
        out[i] = g / (1.0f + std::exp(-alpha * g)) * (u + 1.0f);
    }
}

void add_expert_bias(float* rows, int64_t ld, const int32_t* ids, int64_t n_rows, const float* bias, int64_t bias_ld,
                     int64_t width) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* b = bias + static_cast<int64_t>(ids[r]) * bias_ld;
        float* y = rows + r * ld;
        for (int64_t i = 0; i < width; ++i) y[i] += b[i];
    }
}

void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    if (simd() != Simd::Scalar) {
        f16_to_f32_f16c(src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) dst[i] = quant::f16_to_f32(src[i]);
}

}  // namespace runtime::cpu
