#include "gguf/split.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "gguf/error.h"
#include "gguf/writer.h"

namespace gguf {

namespace {

constexpr std::string_view kSuffix = ".gguf";

// split.no / split.count of a file, or nullopt when it is no shard; malformed values throw.
std::optional<std::pair<uint64_t, uint64_t>> split_keys(const File& f) {
    const Value* count = f.metadata().find(std::string(kSplitCountKey));
    if (!count) return std::nullopt;
    const Value* no = f.metadata().find(std::string(kSplitNoKey));
    if (!count->is_integer() || (no && !no->is_integer())) {
        throw Error(f.path() + ": split.count and split.no must be integers");
    }
    return std::make_pair(no ? no->as_u64() : 0, count->as_u64());
}

uint64_t padded(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Copies each tensor's bytes into the writer, in the writer's declaration order.
void copy_tensors(const File& in, Writer& w, const std::vector<const TensorInfo*>& tensors, size_t& done,
                  size_t total, const SplitProgress& progress) {
    for (const TensorInfo* t : tensors) {
        const auto bytes = in.tensor_data(*t);
        // in slices, so that a writer's buffer never has to hold a whole expert tensor
        constexpr size_t kSlice = 64u << 20;
        for (size_t at = 0; at < bytes.size(); at += kSlice) {
            w.write_data(bytes.subspan(at, std::min(kSlice, bytes.size() - at)));
        }
        if (bytes.empty()) w.write_data(bytes);
        if (progress) progress(++done, total);
    }
}

// The policy with every shard of the input added to the files an output must never be.
OutputPolicy with_input_shards(const File& in, OutputPolicy policy) {
    for (uint32_t i = 0; i < in.n_shards(); ++i) policy.inputs.push_back(in.shard_path(i));
    return policy;
}

}  // namespace

std::string split_path(const std::string& prefix, uint32_t index, uint32_t count) {
    char tail[48];
    std::snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", index + 1, count);
    return prefix + tail;
}

std::optional<SplitName> parse_split_path(const std::string& path) {
    // "-00001-of-00003.gguf": 20 characters, digits at fixed places
    constexpr size_t kTail = 20;
    if (path.size() <= kTail || !path.ends_with(kSuffix)) return std::nullopt;
    const std::string tail = path.substr(path.size() - kTail);
    if (tail[0] != '-' || tail.substr(6, 4) != "-of-") return std::nullopt;
    for (size_t i : {1, 2, 3, 4, 5, 10, 11, 12, 13, 14}) {
        if (tail[i] < '0' || tail[i] > '9') return std::nullopt;
    }
    SplitName n;
    n.prefix = path.substr(0, path.size() - kTail);
    const uint32_t one_based = static_cast<uint32_t>(std::stoul(tail.substr(1, 5)));
    n.count = static_cast<uint32_t>(std::stoul(tail.substr(10, 5)));
    if (one_based == 0 || n.count == 0 || one_based > n.count) return std::nullopt;
    n.index = one_based - 1;
    return n;
}

void File::open_other_shards() {
    const auto keys = split_keys(*this);
    if (!keys || keys->second <= 1) return;
    const auto [no, count] = *keys;
    const auto name = parse_split_path(path_);
    if (no != 0) {
        throw Error(path_ + ": shard " + std::to_string(no + 1) + " of a " + std::to_string(count) +
                    "-file split model; open the first file" +
                    (name ? " (" + split_path(name->prefix, 0, static_cast<uint32_t>(count)) + ")" : std::string()));
    }
    if (count > 65535) throw Error(path_ + ": split.count " + std::to_string(count) + " is out of range");
    if (!name || name->count != count) {
        throw Error(path_ + ": first shard of a " + std::to_string(count) +
                    "-file split model, but its name does not end in -00001-of-" +
                    split_path("", 0, static_cast<uint32_t>(count)).substr(10) + " to find the others by");
    }
    const Value* total_v = metadata_.find(std::string(kSplitTensorsCountKey));
    for (uint32_t i = 1; i < count; ++i) {
        const std::string p = split_path(name->prefix, i, static_cast<uint32_t>(count));
        File shard = open_single(p);  // throws "PATH: cannot open" for a missing shard
        const auto k = split_keys(shard);
        if (!k || k->first != i || k->second != count) {
            throw Error(p + ": expected shard " + std::to_string(i + 1) + " of " + std::to_string(count) +
                        " (split.no " + std::to_string(i) + "), found " +
                        (k ? "split.no " + std::to_string(k->first) + " of " + std::to_string(k->second)
                           : std::string("no split keys")));
        }
        const uint32_t shard_index = static_cast<uint32_t>(more_shards_.size() + 1);
        for (TensorInfo t : shard.tensors_) {
            t.shard = shard_index;
            if (!tensor_index_.emplace(t.name, tensors_.size()).second) {
                throw Error(p + ": tensor '" + t.name + "' is also in an earlier shard");
            }
            tensors_.push_back(std::move(t));
        }
        more_shards_.push_back({p, shard.map_, shard.data_offset_});
    }
    if (total_v && total_v->is_integer() && total_v->as_u64() != tensors_.size()) {
        throw Error(path_ + ": split.tensors.count says " + std::to_string(total_v->as_u64()) + " tensors, the " +
                    std::to_string(count) + " shards hold " + std::to_string(tensors_.size()));
    }
}

std::vector<uint32_t> plan_split(const File& file, const SplitLimits& limits) {
    std::vector<uint32_t> shard_of;
    uint32_t shard = 0;
    uint64_t bytes = 0;
    uint32_t n = 0;
    for (const TensorInfo& t : file.tensors()) {
        const uint64_t size = padded(t.n_bytes(), file.alignment());
        const bool full = (limits.max_bytes > 0 && bytes + size > limits.max_bytes) ||
                          (limits.max_tensors > 0 && n >= limits.max_tensors);
        if (full && n > 0) {
            ++shard;
            bytes = 0;
            n = 0;
        }
        bytes += size;
        ++n;
        shard_of.push_back(shard);
    }
    return shard_of;
}

std::vector<std::string> write_split(const File& file, const std::string& prefix, const SplitLimits& limits,
                                     const SplitProgress& progress, const OutputPolicy& policy) {
    return write_shards(file, prefix, plan_split(file, limits), progress, policy);
}

std::vector<std::string> write_shards(const File& file, const std::string& prefix,
                                      const std::vector<uint32_t>& shard_of, const SplitProgress& progress,
                                      const OutputPolicy& policy) {
    if (shard_of.size() != file.tensors().size()) throw Error(prefix + ": a shard is needed for every tensor");
    const uint32_t count = shard_of.empty() ? 1 : *std::max_element(shard_of.begin(), shard_of.end()) + 1;
    {
        std::vector<bool> used(count, false);
        for (uint32_t s : shard_of) used[s] = true;
        for (uint32_t i = 0; i < count; ++i) {
            if (!used[i] && !shard_of.empty()) throw Error(prefix + ": shard " + std::to_string(i + 1) + " would hold no tensor");
        }
    }
    if (count > 65535) throw Error(prefix + ": " + std::to_string(count) + " shards are more than split.count can hold");
    std::vector<std::string> paths;
    for (uint32_t i = 0; i < count; ++i) paths.push_back(split_path(prefix, i, count));
    for (uint32_t i = 0; i < file.n_shards(); ++i) {
        for (const auto& p : paths) {
            if (same_file(p, file.shard_path(i))) throw Error(p + ": refusing to overwrite the input");
        }
    }
    const OutputPolicy checked = with_input_shards(file, policy);
    for (const auto& p : paths) check_output_path(p, checked);
    size_t done = 0;
    for (uint32_t i = 0; i < count; ++i) {
        Writer w(paths[i], file.version(), checked);
        if (i == 0) {
            for (const auto& [key, v] : file.metadata().entries()) w.metadata().set(key, v);
        }
        w.metadata().set(std::string(kSplitNoKey), Value::u16(static_cast<uint16_t>(i)));
        w.metadata().set(std::string(kSplitCountKey), Value::u16(static_cast<uint16_t>(count)));
        w.metadata().set(std::string(kSplitTensorsCountKey), Value::i32(static_cast<int32_t>(file.tensors().size())));
        std::vector<const TensorInfo*> mine;
        for (size_t k = 0; k < shard_of.size(); ++k) {
            if (shard_of[k] != i) continue;
            const TensorInfo& t = file.tensors()[k];
            w.add_tensor(t.name, t.type, t.dims);
            mine.push_back(&t);
        }
        copy_tensors(file, w, mine, done, file.tensors().size(), progress);
        w.finish();
    }
    return paths;
}

void write_merged(const File& file, const std::string& out_path, const SplitProgress& progress,
                  const OutputPolicy& policy) {
    for (uint32_t i = 0; i < file.n_shards(); ++i) {
        if (same_file(out_path, file.shard_path(i))) throw Error(out_path + ": refusing to overwrite the input");
    }
    const OutputPolicy checked = with_input_shards(file, policy);
    check_output_path(out_path, checked);
    Writer w(out_path, file.version(), checked);
    for (const auto& [key, v] : file.metadata().entries()) {
        if (key != kSplitNoKey && key != kSplitCountKey && key != kSplitTensorsCountKey) w.metadata().set(key, v);
    }
    std::vector<const TensorInfo*> all;
    for (const TensorInfo& t : file.tensors()) {
        w.add_tensor(t.name, t.type, t.dims);
        all.push_back(&t);
    }
    size_t done = 0;
    copy_tensors(file, w, all, done, all.size(), progress);
    w.finish();
}

}  // namespace gguf
