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

}  // namespace runtime::cpu
