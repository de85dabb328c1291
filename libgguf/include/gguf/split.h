// Split GGUF models as llama.cpp's gguf-split makes them: shards named PREFIX-00001-of-0000N.gguf,
// each with split.no (u16, 0-based), split.count (u16) and split.tensors.count (i32, the tensors of
// all shards); the first shard holds all other metadata. File::open reads them as one model.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/file.h"
#include "gguf/output_file.h"

namespace gguf {

inline constexpr std::string_view kSplitNoKey = "split.no";
inline constexpr std::string_view kSplitCountKey = "split.count";
inline constexpr std::string_view kSplitTensorsCountKey = "split.tensors.count";

// "PREFIX-00002-of-00005.gguf" for index 1 (0-based) of 5.
std::string split_path(const std::string& prefix, uint32_t index, uint32_t count);

struct SplitName {
    std::string prefix;  // the path without "-0000i-of-0000N.gguf"
    uint32_t index = 0;  // 0-based
    uint32_t count = 0;
};
// Recognises split_path's pattern; nullopt for any other name.
std::optional<SplitName> parse_split_path(const std::string& path);

// Where a model is cut: a new shard starts before the tensor that would take the current shard's
// tensor data (each tensor padded to the alignment) past max_bytes, or when it holds max_tensors.
// 0 means no limit. A shard always gets at least one tensor.
struct SplitLimits {
    uint64_t max_bytes = 0;
    uint32_t max_tensors = 0;
};

// The shard index of each tensor of `file`, in the file's order.
std::vector<uint32_t> plan_split(const File& file, const SplitLimits& limits);

// Called after each tensor is written: (tensors done, total).
using SplitProgress = std::function<void(size_t done, size_t total)>;

// Writes `file` (one file or a split model) as shards PREFIX-0000i-of-0000N.gguf, each through a safe
// temp file (output_file.h) put in place when complete; returns their paths. Every shard's path is
// checked against `policy` (and never one of the input's shards) before the first is written. A model
// that fits in one shard still gets the split keys (split.count 1), as gguf-split does.
std::vector<std::string> write_split(const File& file, const std::string& prefix, const SplitLimits& limits,
                                     const SplitProgress& progress = {}, const OutputPolicy& policy = {});
// The same with the shard of each tensor given (0-based, every shard up to the largest used):
// gguf-quantize --keep-split cuts its output where the input was cut.
std::vector<std::string> write_shards(const File& file, const std::string& prefix,
                                      const std::vector<uint32_t>& shard_of, const SplitProgress& progress = {},
                                      const OutputPolicy& policy = {});

// Writes `file` (normally a split model opened through its first shard) as one file without the
// split keys, checked against `policy` first like write_split's shards.
void write_merged(const File& file, const std::string& out_path, const SplitProgress& progress = {},
                  const OutputPolicy& policy = {});

}  // namespace gguf
