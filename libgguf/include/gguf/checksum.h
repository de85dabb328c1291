// Content checksums of tensor data (xxHash XXH64, XXH3-64), for integrity checks, manifests and quick diffs.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/file.h"

namespace gguf {

class Metadata;

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed = 0);

// xxh64 of every tensor's data, in the file's tensor order, hashed on `n_threads` threads (0: all
// hardware threads). One tensor's hash is sequential; tensors are spread over the threads largest
// first, so a file of many large tensors reads at the storage's speed instead of one core's.
// Tensors `want` rejects are skipped (their entry stays 0).
std::vector<uint64_t> xxh64_tensors(const File& file, const std::function<bool(const TensorInfo&)>& want = {},
                                    unsigned n_threads = 0);
uint64_t xxh3_64(std::span<const uint8_t> bytes);
// XXH3-64 of the metadata in file order, each key, value type and value encoded as GGUF encodes them:
// equal for files whose metadata is byte-identical, whatever their tensors.
uint64_t metadata_xxh3(const Metadata& metadata);
std::string hex64(uint64_t v);  // 16 lower-case hex digits

}  // namespace gguf
