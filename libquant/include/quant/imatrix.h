// Importance matrices as llama.cpp's llama-imatrix writes them: the GGUF format (a
// "<tensor>.in_sum2" and a "<tensor>.counts" tensor per weight, plus imatrix.* metadata) and the
// legacy .dat format. Values come out as llama-quantize feeds them to the quantizer: the mean
// squared activation of every input column, one vector per expert for stacked expert tensors.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quant {

class ImatrixData;

struct ImatrixEntry {
    // Row length x matrices values, matrix after matrix: a stacked expert tensor has one vector
    // per expert, so an entry fits a tensor when its size is dims[0] x (experts or 1).
    std::vector<float> values;
};

class Imatrix {
public:
    using EntryMap = std::map<std::string, ImatrixEntry, std::less<>>;

    // Reads either format (told apart by the GGUF magic). Any defect throws quant::Error naming
    // the file and, where it applies, the entry.
    static Imatrix load(const std::string& path);
    // The same from bytes the caller keeps alive for the call; `name` stands for the path.
    static Imatrix parse(std::span<const uint8_t> bytes, const std::string& name);
    // The means of raw sums and counts (quant/imatrix_data.h), as they would be read back from the file
    // that data writes; `name` stands for the path in messages.
    static Imatrix from_data(const ImatrixData& data, const std::string& name);

    const std::string& path() const { return path_; }
    bool is_legacy() const { return legacy_; }
    const std::vector<std::string>& datasets() const { return datasets_; }
    uint32_t chunk_count() const { return chunk_count_; }  // 0 when the file does not say
    uint32_t chunk_size() const { return chunk_size_; }    // tokens per chunk; 0 when unknown

    const EntryMap& entries() const { return entries_; }
    // The entry for a weight tensor by its name, or nullptr.
    const ImatrixEntry* find(std::string_view tensor_name) const;

private:
    std::string path_;
    bool legacy_ = false;
    std::vector<std::string> datasets_;
    uint32_t chunk_count_ = 0;
    uint32_t chunk_size_ = 0;
    EntryMap entries_;
};

}  // namespace quant
