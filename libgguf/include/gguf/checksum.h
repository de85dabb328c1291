// Content checksums of tensor data (xxHash XXH64), for integrity checks and quick diffs.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/file.h"

namespace gguf {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed = 0);

// xxh64 of every tensor's data, in the file's tensor order, hashed on `n_threads` threads (0: all
// hardware threads). One tensor's hash is sequential; tensors are spread over the threads largest
// first, so a file of many large tensors reads at the storage's speed instead of one core's.
// Tensors `want` rejects are skipped (their entry stays 0).
std::vector<uint64_t> xxh64_tensors(const File& file, const std::function<bool(const TensorInfo&)>& want = {},
                                    unsigned n_threads = 0);
std::string hex64(uint64_t v);  // 16 lower-case hex digits

}  // namespace gguf
