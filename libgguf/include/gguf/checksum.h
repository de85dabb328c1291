// Content checksums of tensor data (xxHash XXH64), for integrity checks and quick diffs.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace gguf {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed = 0);
std::string hex64(uint64_t v);  // 16 lower-case hex digits

}  // namespace gguf
