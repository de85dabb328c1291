#include "gguf/checksum.h"

#include <xxhash.h>

#include <cstdio>

namespace gguf {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed) { return XXH64(bytes.data(), bytes.size(), seed); }

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace gguf
