#include "quant/finite.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "quant/quant.h"

namespace quant {

std::string NonFinite::describe() const {
    const char* what = std::isnan(value) ? "NaN" : value > 0 ? "+inf" : "-inf";
    return std::string(what) + " at row " + std::to_string(row) + ", column " + std::to_string(column);
}

std::optional<NonFinite> find_non_finite(std::span<const float> values) {
    for (size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) return NonFinite{0, static_cast<int64_t>(i), values[i]};
    }
    return std::nullopt;
}

std::optional<NonFinite> find_non_finite(gguf::GgmlType type, std::span<const uint8_t> data, int64_t n_per_row,
                                         uint64_t n_rows) {
    if (n_per_row <= 0 || n_rows == 0) return std::nullopt;
    if (!can_dequantize(type)) {
        throw Error("cannot read " + std::string(gguf::type_name(type)) + " data to check it for NaN/Inf");
    }
    const size_t row_bytes = gguf::row_size(type, static_cast<uint64_t>(n_per_row));
    if (data.size() / row_bytes < n_rows) throw Error("find_non_finite: the data is shorter than its rows");
    // The first bad row in row order, whatever thread finds it; rows past a known bad one are skipped.
    std::atomic<uint64_t> first_bad{std::numeric_limits<uint64_t>::max()};
    NonFinite found;
    const int64_t rows = static_cast<int64_t>(n_rows);
#pragma omp parallel
    {
        std::vector<float> buf(static_cast<size_t>(n_per_row));
#pragma omp for schedule(dynamic, 64)
        for (int64_t r = 0; r < rows; ++r) {
            if (static_cast<uint64_t>(r) > first_bad.load(std::memory_order_relaxed)) continue;
            dequantize_row(type, data.data() + static_cast<size_t>(r) * row_bytes, buf.data(), n_per_row);
            for (int64_t c = 0; c < n_per_row; ++c) {
                if (std::isfinite(buf[static_cast<size_t>(c)])) continue;
#pragma omp critical(quant_find_non_finite)
                if (static_cast<uint64_t>(r) < first_bad.load()) {
                    first_bad.store(static_cast<uint64_t>(r));
                    found = {static_cast<uint64_t>(r), c, buf[static_cast<size_t>(c)]};
                }
                break;
            }
        }
    }
    if (first_bad == std::numeric_limits<uint64_t>::max()) return std::nullopt;
    return found;
}

}  // namespace quant
