// Random but well-formed tensor data, written straight as blocks (no float quantization): random
// quants with small positive fp16 scales, so that values stay in the range of real weights. The bytes
// of a chunk depend only on (seed, tensor, chunk), never on the thread that made them.
#pragma once

#include <cstdint>

#include "gguf/types.h"

namespace synth {

// Whether fill_blocks can make data of this type.
bool can_fill(gguf::GgmlType type);

// Fills `n_blocks` blocks (elements for float types) of `type` at dst. `gaussian` float tensors get
// N(0, 0.02) values (router weights: expert choice varies from token to token), otherwise ones or zeros
// as `constant`.
void fill_blocks(gguf::GgmlType type, uint8_t* dst, uint64_t n_blocks, uint64_t seed, bool gaussian, float constant);

}  // namespace synth
