// Content checksums of tensor data (xxHash XXH64, XXH3-64), for integrity checks, manifests and quick diffs.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace gguf {

class Metadata;

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed = 0);
uint64_t xxh3_64(std::span<const uint8_t> bytes);
// XXH3-64 of the metadata in file order, each key, value type and value encoded as GGUF encodes them:
// equal for files whose metadata is byte-identical, whatever their tensors.
uint64_t metadata_xxh3(const Metadata& metadata);
std::string hex64(uint64_t v);  // 16 lower-case hex digits

}  // namespace gguf
