#include "quant/imatrix.h"

#include <cmath>

#include "quant/imatrix_data.h"
#include "quant/quant.h"

namespace quant {

Imatrix Imatrix::from_data(const ImatrixData& d, const std::string& name) {
    Imatrix im;
    im.path_ = name;
    im.legacy_ = d.legacy;
    im.datasets_ = d.datasets;
    im.chunk_count_ = d.chunk_count;
    im.chunk_size_ = d.chunk_size;
    for (const auto& [entry, s] : d.entries) {
        if (s.counts.empty() || s.sums.empty() || s.sums.size() % s.counts.size() != 0) {
            throw Error(name + ": imatrix entry '" + entry + "' has " + std::to_string(s.sums.size()) + " sums for " +
                        std::to_string(s.counts.size()) + " counts");
        }
        const size_t n_per = s.n_cols();
        ImatrixEntry e;
        e.values.resize(s.sums.size());
        for (size_t j = 0; j < s.counts.size(); ++j) {
            const int64_t n = s.counts[j];
            for (size_t i = 0; i < n_per; ++i) {
                // llama-quantize divides the f32 sum by the count in float; this repeats it to feed the
                // quantizer identical weights. A GGUF entry with no activations gets the neutral 1; a
                // legacy one without calls keeps its stored value.
                const auto sum = static_cast<float>(s.sums[j * n_per + i]);
                e.values[j * n_per + i] = n > 0 ? sum / static_cast<float>(n) : (d.legacy ? sum : 1.0f);
            }
        }
        for (float v : e.values) {
            if (!std::isfinite(v)) throw Error(name + ": imatrix entry '" + entry + "' holds a non-finite value");
        }
        im.entries_.emplace(entry, std::move(e));
    }
    if (im.entries_.empty()) throw Error(name + ": the importance matrix holds no entries");
    return im;
}

Imatrix Imatrix::parse(std::span<const uint8_t> bytes, const std::string& name) {
    return from_data(ImatrixData::parse(bytes, name), name);
}

Imatrix Imatrix::load(const std::string& path) { return from_data(ImatrixData::load(path), path); }

const ImatrixEntry* Imatrix::find(std::string_view tensor_name) const {
    auto it = entries_.find(tensor_name);
    return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace quant
