// The raw content of an importance-matrix file: per weight tensor, the sums of squared input
// activations per input column and how many activations were summed (one count per expert for a
// stacked expert tensor). This is what llama-imatrix accumulates and writes, what several files are
// combined from, and what quant::Imatrix turns into the means the quantizer reads.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "gguf/output_file.h"

namespace quant {

struct ImatrixStats {
    // n_mat x n_cols sums, matrix after matrix; kept in double while accumulating (the file holds f32)
    std::vector<double> sums;
    // per matrix: the activations (rows) summed; a dense tensor has one
    std::vector<int64_t> counts;

    size_t n_mat() const { return counts.size(); }
    size_t n_cols() const { return counts.empty() ? 0 : sums.size() / counts.size(); }
};

class ImatrixData {
public:
    using StatsMap = std::map<std::string, ImatrixStats, std::less<>>;

    StatsMap entries;
    std::vector<std::string> datasets;  // the calibration texts, in the order they were used
    uint32_t chunk_count = 0;           // chunks of text the sums cover
    uint32_t chunk_size = 0;            // tokens per chunk
    // A legacy .dat holds means scaled by "calls" rather than sums: its entries keep those values as
    // sums and the calls as the count until to_raw() rescales them (see there).
    bool legacy = false;

    // Reads either format (told apart by the GGUF magic); defects throw quant::Error naming the file.
    static ImatrixData load(const std::string& path);
    static ImatrixData parse(std::span<const uint8_t> bytes, const std::string& name);

    // A legacy file's entries as sums and counts, as llama-imatrix reconstructs them when it combines
    // files: each call stood for one chunk of `chunk_size` tokens. No-op for GGUF data.
    void to_raw(uint32_t tokens_per_chunk);

    // Adds `other`'s sums and counts to these (raw data on both sides); its datasets are appended and
    // its chunks added. An entry of another shape throws quant::Error naming it and `other_name`.
    void merge(const ImatrixData& other, const std::string& other_name);

    // llama.cpp's GGUF imatrix format: general.type = "imatrix", imatrix.datasets / chunk_count /
    // chunk_size, and per entry (by name) "<name>.in_sum2" f32 [n_cols, n_mat] and "<name>.counts"
    // f32 [1, n_mat]. Written to a temp file renamed into place when complete.
    void write_gguf(const std::string& path, const gguf::OutputPolicy& policy = {}) const;
    // The legacy .dat of older llama-imatrix: per entry the means times the calls (chunks) it took,
    // then the chunk count and the last dataset's name. Entries without any activation are left out.
    void write_legacy(const std::string& path, const gguf::OutputPolicy& policy = {}) const;
};

}  // namespace quant
