// The element-wise and row-wise operations of the transformer blocks, on f32 rows.
#pragma once

#include <cstdint>

#include "runtime/hparams.h"

namespace runtime::cpu {

// out = x / sqrt(mean(x^2) + eps) * w  (out may alias x)
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps);

// Rotates one head of n_rot values in place by the angles of one position (n_rot/2 cos and sin).
void rope(float* head, const float* cos, const float* sin, int n_rot, RopeMode mode);

// In-place softmax of n values; returns nothing, the row sums to 1.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]  (out may alias gate)
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// gpt-oss's SwiGLU: g = min(gate, limit), u = clamp(up, -limit, limit),
// out = g * sigmoid(alpha * g) * (u + 1)  (out may alias gate)
void swiglu_oai(const float* gate, const float* up, float* out, int64_t n, float alpha, float limit);

// Row r (ld apart) += `width` values of `bias` from row ids[r] (bias_ld apart): an expert's bias per
// routed slot, or a column range of it.
void add_expert_bias(float* rows, int64_t ld, const int32_t* ids, int64_t n_rows, const float* bias, int64_t bias_ld,
                     int64_t width);

// One query head against positions [0, n_kv) of one KV head, both in f32: keys transposed
// (kt[d * ld + p], so the scores vectorize across positions), values as rows (v[p * hdv + d]).
// out[0..hdv) = softmax(scale * q.K) V. `scores` is scratch and, like each row of kt, must have room
// for n_kv rounded up to a multiple of kAttendPad (the last chunk of scores is computed whole).
// A `sink` (gpt-oss) joins the softmax as one more logit without a value row.
inline constexpr int kAttendPad = 16;
void attend(const float* q, float scale, const float* kt, int64_t ld, int hd, const float* v, int hdv, int n_kv,
            float* scores, float* out, const float* sink = nullptr);

// attend() for n_rows query rows that share the keys, values and n_kv (the query heads of one KV head,
// one token): each key and value row is read once per kAttendRows queries. Row r's output is
// bit-identical to attend(q[r], ..., out[r]). `scores` has room for kAttendRows rows of lds floats
// (lds as attend()'s scratch).
inline constexpr int kAttendRows = 8;
// Whether attend_rows beats attend one head at a time for groups of this many query heads: with
// AVX-512 and whole groups of four (its register-blocked value pass); a tiny model's groups of two
// ran its prompts 1.4x slower than attend.
bool attend_rows_pays(int n_rows);
// `sinks`, where given, holds one sink per row.
void attend_rows(int n_rows, const float* const* q, float scale, const float* kt, int64_t ld, int hd, const float* v,
                 int hdv, int n_kv, float* scores, int64_t lds, float* const* out, const float* sinks = nullptr);

// n IEEE halves to f32 (F16C where the CPU has it).
void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n);

}  // namespace runtime::cpu
