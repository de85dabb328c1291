// Producing a planned tensor's bytes in its GGUF type, a bounded chunk of rows at a time, straight
// from the mapped checkpoint into the output stream (memory stays near one chunk, not one model).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "convert/tensor_plan.h"

namespace convert {

// Calls `sink` with consecutive pieces that together are the tensor's full GGUF data.
void produce_tensor_data(const PlannedTensor& t, const std::function<void(std::span<const uint8_t>)>& sink);

// Row `r` of a permuted tensor comes from this source row: within each head, llama.cpp
// interleaves the two rotary halves (HF rows h*d + i*d/2 + j become h*d + 2*j + i).
int64_t permuted_source_row(int64_t r, int64_t rows, int64_t heads);

}  // namespace convert
