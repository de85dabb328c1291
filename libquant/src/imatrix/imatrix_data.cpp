// Reading the raw sums and counts of both imatrix formats, and combining files.
#include "quant/imatrix_data.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "gguf/error.h"
#include "gguf/file.h"
#include "imatrix_names.h"
#include "quant/quant.h"

namespace quant {

namespace {

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

ImatrixData parse_gguf(std::span<const uint8_t> bytes, const std::string& name) {
    gguf::File f = [&] {
        try {
            return gguf::File::parse(bytes, name);
        } catch (const gguf::Error& e) {
            throw Error(e.what());
        }
    }();
    ImatrixData d;
    const gguf::Metadata& md = f.metadata();
    // llama-quantize refuses a GGUF imatrix without these, as a sign of a foreign or broken file.
    for (const char* key : {imatrix_keys::kDatasets, imatrix_keys::kChunkCount, imatrix_keys::kChunkSize}) {
        if (!md.contains(key)) throw Error(name + ": not an importance matrix: metadata key " + key + " is missing");
    }
    try {
        d.datasets = md.get_string_array(imatrix_keys::kDatasets);
        d.chunk_count = md.get_u32(imatrix_keys::kChunkCount);
        d.chunk_size = md.get_u32(imatrix_keys::kChunkSize);
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
        if (strip_suffix(base, imatrix_keys::kSum2Suffix)) parts[base].sum2 = &t;
        else if (strip_suffix(base, imatrix_keys::kSumSuffix)) parts[base].sum = &t;
        else if (strip_suffix(base, imatrix_keys::kCountsSuffix)) parts[base].counts = &t;
    }
    for (const auto& [entry, p] : parts) {
        if (!p.sum2 || !p.counts) {
            throw Error(name + ": imatrix entry '" + entry + "' lacks its " +
                        std::string(p.sum2 ? imatrix_keys::kCountsSuffix : imatrix_keys::kSum2Suffix) + " tensor");
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
        ImatrixStats s;
        s.sums.assign(sums.begin(), sums.end());
        s.counts.resize(n_counts);
        for (uint64_t j = 0; j < n_counts; ++j) {
            const float c = counts[j];
            if (!std::isfinite(c) || c < 0 || c > static_cast<float>(std::numeric_limits<int64_t>::max())) {
                throw Error(name + ": imatrix entry '" + entry + "' has an invalid count");
            }
            // Counts are whole numbers of activations stored as floats; llama-quantize rounds them.
            s.counts[j] = std::lround(c);
        }
        d.entries.emplace(entry, std::move(s));
    }
    if (d.entries.empty()) throw Error(name + ": the importance matrix holds no entries");
    return d;
}

ImatrixData parse_legacy(std::span<const uint8_t> bytes, const std::string& name) {
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
    ImatrixData d;
    d.legacy = true;
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
        std::vector<float> values(static_cast<size_t>(nval));
        std::memcpy(values.data(), bytes.data() + pos, values.size() * sizeof(float));
        pos += values.size() * sizeof(float);
        ImatrixStats s;
        s.sums.assign(values.begin(), values.end());
        s.counts = {std::max<int64_t>(ncall, 0)};
        if (!d.entries.emplace(entry, std::move(s)).second) {
            throw Error(name + ": legacy imatrix has entry '" + entry + "' twice");
        }
    }
    // Optional trailer: the number of chunks, then the dataset's name.
    if (bytes.size() - pos >= 4) {
        const int32_t chunks = read_i32("the chunk count");
        d.chunk_count = chunks > 0 ? static_cast<uint32_t>(chunks) : 0;
        if (bytes.size() - pos >= 4) {
            const int32_t len = read_i32("the dataset name length");
            if (len > 0 && static_cast<size_t>(len) <= bytes.size() - pos) {
                d.datasets.emplace_back(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(len));
            }
        }
    }
    return d;
}

}  // namespace

ImatrixData ImatrixData::parse(std::span<const uint8_t> bytes, const std::string& name) {
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return parse_gguf(bytes, name);
    return parse_legacy(bytes, name);
}

ImatrixData ImatrixData::load(const std::string& path) {
    std::shared_ptr<const gguf::Mapping> map;
    try {
        map = gguf::Mapping::map_file(path);
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    return parse(map->bytes(), path);
}

void ImatrixData::to_raw(uint32_t tokens_per_chunk) {
    if (!legacy) return;
    if (tokens_per_chunk == 0) throw Error("a legacy imatrix needs a chunk size to be combined");
    // The legacy value is (sum / count) * calls with one call per chunk: times the chunk size it is
    // the sum again, over calls * chunk size activations (llama-imatrix's own reconstruction).
    for (auto& [name, s] : entries) {
        for (double& v : s.sums) v *= tokens_per_chunk;
        for (int64_t& c : s.counts) c *= tokens_per_chunk;
    }
    chunk_size = tokens_per_chunk;
    legacy = false;
}

void ImatrixData::merge(const ImatrixData& other, const std::string& other_name) {
    if (legacy || other.legacy) throw Error(other_name + ": legacy imatrix data must be made raw before combining");
    for (const auto& [name, o] : other.entries) {
        auto [it, fresh] = entries.try_emplace(name, o);
        if (fresh) continue;
        ImatrixStats& s = it->second;
        if (s.sums.size() != o.sums.size()) {
            throw Error(other_name + ": imatrix entry '" + name + "' has " + std::to_string(o.sums.size()) +
                        " values, " + std::to_string(s.sums.size()) + " in the files before it");
        }
        // a dense entry has one count; a file made before per-expert counts has one for all experts
        if (s.counts.size() == 1 && o.counts.size() > 1) s.counts.resize(o.counts.size(), s.counts[0]);
        std::vector<int64_t> oc = o.counts;
        if (oc.size() == 1 && s.counts.size() > 1) oc.resize(s.counts.size(), oc[0]);
        if (oc.size() != s.counts.size() || s.sums.size() % s.counts.size() != 0) {
            throw Error(other_name + ": imatrix entry '" + name + "' has " + std::to_string(o.counts.size()) +
                        " counts, " + std::to_string(s.counts.size()) + " in the files before it");
        }
        for (size_t i = 0; i < s.sums.size(); ++i) s.sums[i] += o.sums[i];
        for (size_t i = 0; i < s.counts.size(); ++i) s.counts[i] += oc[i];
    }
    datasets.insert(datasets.end(), other.datasets.begin(), other.datasets.end());
    chunk_count += other.chunk_count;
    if (chunk_size == 0) chunk_size = other.chunk_size;
}

}  // namespace quant
