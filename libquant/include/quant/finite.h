// Finite-ness of stored tensors: the first NaN or infinity a tensor's values hold, found by
// dequantizing it row by row (a quantized block is non-finite when its scale is).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "gguf/types.h"

namespace quant {

struct NonFinite {
    uint64_t row = 0;     // counting every row of every matrix of the tensor
    int64_t column = 0;
    float value = 0;      // NaN, +inf or -inf

    // "NaN at row 3, column 17"
    std::string describe() const;
};

// `data` holds `n_rows` rows of `n_per_row` values of `type`. Rows are checked on OpenMP threads;
// the first non-finite value in row order is returned. A type libquant cannot read throws quant::Error.
std::optional<NonFinite> find_non_finite(gguf::GgmlType type, std::span<const uint8_t> data, int64_t n_per_row,
                                         uint64_t n_rows);

// The same for floats already in memory (n values as one row).
std::optional<NonFinite> find_non_finite(std::span<const float> values);

}  // namespace quant
