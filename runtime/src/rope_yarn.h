// YaRN's RoPE frequencies (rope.scaling.type = yarn).
#pragma once

#include <vector>

#include "runtime/hparams.h"

namespace runtime {

// Per rotated pair of a head, the angle per position: each frequency blended between its
// extrapolated (unscaled) and interpolated (divided by the scaling factor) value by a linear ramp
// over the pairs whose wavelength falls between beta_fast and beta_slow rotations of the original
// context, as transformers' and ggml's YaRN compute it. The attention factor is applied to cos/sin
// by the executors (hp.rope_attn_factor), not here.
std::vector<double> yarn_inv_freq(const HParams& hp);

}  // namespace runtime
