#include "quant/imatrix.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "gguf/error.h"
#include "gguf/file.h"
#include "quant/quant.h"

namespace quant {

namespace {

constexpr std::string_view kSum2Suffix = ".in_sum2";
constexpr std::string_view kSumSuffix = ".in_sum";
constexpr std::string_view kCountsSuffix = ".counts";

bool strip_suffix(std::string& s, std::string_view suffix) {
    if (s.size() <= suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) {
        return false;
    }
    s.resize(s.size() - suffix.size());
    return true;
}

std::vector<float> read_f32(const gguf::File& f, const gguf::TensorInfo& t) {
    const auto bytes = f.tensor_data(t);
    std::vector<float> out(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
    return out;
}

void check_finite(const std::string& file, const std::string& entry, const std::vector<float>& values) {
    for (float v : values) {
        if (!std::isfinite(v)) throw Error(file + ": imatrix entry '" + entry + "' holds a non-finite value");
    }
}

}  // namespace

// Turns either on-disk form into entries; a friend of Imatrix so the parsers fill it directly.
class ImatrixReader {
public:
    static Imatrix from_gguf(std::span<const uint8_t> bytes, const std::string& name);
    static Imatrix from_legacy(std::span<const uint8_t> bytes, const std::string& name);
};

Imatrix ImatrixReader::from_gguf(std::span<const uint8_t> bytes, const std::string& name) {
    gguf::File f = [&] {
        try {
            return gguf::File::parse(bytes, name);
        } catch (const gguf::Error& e) {
            throw Error(e.what());
        }
    }();
    Imatrix im;
    im.path_ = name;
    const gguf::Metadata& md = f.metadata();
    // llama-quantize refuses a GGUF imatrix without these, as a sign of a foreign or broken file.
    for (const char* key : {"imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"}) {
        if (!md.contains(key)) throw Error(name + ": not an importance matrix: metadata key " + key + " is missing");
    }
    try {
        im.datasets_ = md.get_string_array("imatrix.datasets");
        im.chunk_count_ = md.get_u32("imatrix.chunk_count");
        im.chunk_size_ = md.get_u32("imatrix.chunk_size");
    } catch (const gguf::Error& e) {
        throw Error(name + ": " + e.what());
    }

    struct Parts {
        const gguf::TensorInfo* sum2 = nullptr;
        const gguf::TensorInfo* sum = nullptr;
        const gguf::TensorInfo* counts = nullptr;
    };
    std::map<std::string, Parts> parts;
    for (const auto& t : f.tensors()) {
        std::string base = t.name;
        // ".in_sum2" first: ".in_sum" is a prefix of it.
        if (strip_suffix(base, kSum2Suffix)) parts[base].sum2 = &t;
        else if (strip_suffix(base, kSumSuffix)) parts[base].sum = &t;
        else if (strip_suffix(base, kCountsSuffix)) parts[base].counts = &t;
    }
    for (const auto& [entry, p] : parts) {
        if (!p.sum2 || !p.counts) {
            throw Error(name + ": imatrix entry '" + entry + "' lacks its " +
                        (p.sum2 ? std::string(kCountsSuffix) : std::string(kSum2Suffix)) + " tensor");
        }
        for (const gguf::TensorInfo* t : {p.sum2, p.counts, p.sum}) {
            if (t && t->type != gguf::GgmlType::F32) {
                throw Error(name + ": imatrix tensor '" + t->name + "' is " +
                            std::string(gguf::type_name(t->type)) + ", not f32");
            }
        }
        const uint64_t n_sums = p.sum2->n_elements();
        const uint64_t n_counts = p.counts->n_elements();
        if (p.sum && p.sum->n_elements() != n_sums) {
            throw Error(name + ": imatrix entry '" + entry + "' has sums of two different sizes");
        }
        // llama-quantize skips such entries rather than failing; so do we.
        if (n_counts == 0 || n_sums == 0) continue;
        if (n_sums % n_counts != 0) {
            throw Error(name + ": imatrix entry '" + entry + "' has " + std::to_string(n_sums) + " sums for " +
                        std::to_string(n_counts) + " counts");
        }
        const std::vector<float> sums = read_f32(f, *p.sum2);
        const std::vector<float> counts = read_f32(f, *p.counts);
        const uint64_t n_per = n_sums / n_counts;
        ImatrixEntry e;
        e.values.resize(n_sums);
        for (uint64_t j = 0; j < n_counts; ++j) {
            const float c = counts[j];
            if (!std::isfinite(c) || c < 0 || c > static_cast<float>(std::numeric_limits<int64_t>::max())) {
                throw Error(name + ": imatrix entry '" + entry + "' has an invalid count");
            }
            // Counts are whole numbers of activations stored as floats; llama-quantize rounds
            // them and divides in float, which this repeats to feed the quantizer identical weights.
            const int64_t n = std::lround(c);
            for (uint64_t i = 0; i < n_per; ++i) {
                e.values[j * n_per + i] = n > 0 ? sums[j * n_per + i] / static_cast<float>(n) : 1.0f;
            }
        }
        check_finite(name, entry, e.values);
        im.entries_.emplace(entry, std::move(e));
    }
    if (im.entries_.empty()) throw Error(name + ": the importance matrix holds no entries");
    return im;
}

Imatrix ImatrixReader::from_legacy(std::span<const uint8_t> bytes, const std::string& name) {
    size_t pos = 0;
    auto read_i32 = [&](const char* what) {
        if (bytes.size() - pos < 4) {
            throw Error(name + ": legacy imatrix truncated reading " + what + " at offset " + std::to_string(pos));
        }
        int32_t v;
        std::memcpy(&v, bytes.data() + pos, 4);
        pos += 4;
        return v;
    };
    Imatrix im;
    im.path_ = name;
    im.legacy_ = true;
    const int32_t n_entries = read_i32("the entry count");
    // Each entry takes at least 16 bytes, which bounds a hostile count before any allocation.
    if (n_entries < 1 || static_cast<uint64_t>(n_entries) > bytes.size() / 16) {
        throw Error(name + ": not an importance matrix (bad entry count " + std::to_string(n_entries) + ")");
    }
    for (int32_t i = 0; i < n_entries; ++i) {
        const int32_t len = read_i32("a name length");
        if (len < 1 || static_cast<size_t>(len) > bytes.size() - pos) {
            throw Error(name + ": legacy imatrix entry " + std::to_string(i) + " has a bad name length at offset " +
                        std::to_string(pos - 4));
        }
        std::string entry(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(len));
        pos += static_cast<size_t>(len);
        const int32_t ncall = read_i32("a call count");
        const int32_t nval = read_i32("a value count");
        if (nval < 1 || static_cast<size_t>(nval) > (bytes.size() - pos) / sizeof(float)) {
            throw Error(name + ": legacy imatrix entry '" + entry + "' has a bad value count at offset " +
                        std::to_string(pos - 4));
        }
        ImatrixEntry e;
        e.values.resize(static_cast<size_t>(nval));
        std::memcpy(e.values.data(), bytes.data() + pos, e.values.size() * sizeof(float));
        pos += e.values.size() * sizeof(float);
        // The legacy file stores sums scaled to the number of calls; the mean is sum / calls.
        if (ncall > 0) {
            for (float& v : e.values) v /= static_cast<float>(ncall);
        }
        check_finite(name, entry, e.values);
        if (!im.entries_.emplace(entry, std::move(e)).second) {
            throw Error(name + ": legacy imatrix has entry '" + entry + "' twice");
        }
    }
    // Optional trailer: the number of chunks, then the dataset's name.
    if (bytes.size() - pos >= 4) {
        const int32_t chunks = read_i32("the chunk count");
        im.chunk_count_ = chunks > 0 ? static_cast<uint32_t>(chunks) : 0;
        if (bytes.size() - pos >= 4) {
            const int32_t len = read_i32("the dataset name length");
            if (len > 0 && static_cast<size_t>(len) <= bytes.size() - pos) {
                im.datasets_.emplace_back(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(len));
            }
        }
    }
    return im;
}

Imatrix Imatrix::parse(std::span<const uint8_t> bytes, const std::string& name) {
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return ImatrixReader::from_gguf(bytes, name);
    return ImatrixReader::from_legacy(bytes, name);
}

Imatrix Imatrix::load(const std::string& path) {
    std::shared_ptr<const gguf::Mapping> map;
    try {
        map = gguf::Mapping::map_file(path);
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    return parse(map->bytes(), path);
}

const ImatrixEntry* Imatrix::find(std::string_view tensor_name) const {
    auto it = entries_.find(tensor_name);
    return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace quant
