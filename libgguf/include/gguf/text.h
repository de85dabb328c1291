// How sizes and shapes are written in every report and message of the project, so that the tools
// agree: "12.34 MiB", "[4096, 32000]".
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace gguf {

// Binary units with two decimals ("512 B", "1.50 KiB", "12.34 MiB", up to TiB).
std::string format_bytes(uint64_t bytes);

// Dimensions in the order given, "[256, 4096]"; "[]" for none.
std::string shape_text(std::span<const int64_t> dims);

}  // namespace gguf
