// The names llama.cpp's GGUF imatrix format uses: metadata keys and the suffixes that turn a weight
// tensor's name into its entry's tensors. Shared by the reader and the writer.
#pragma once

#include <string_view>

namespace quant::imatrix_keys {

inline constexpr const char* kGeneralType = "general.type";
inline constexpr const char* kTypeValue = "imatrix";
inline constexpr const char* kDatasets = "imatrix.datasets";
inline constexpr const char* kChunkCount = "imatrix.chunk_count";
inline constexpr const char* kChunkSize = "imatrix.chunk_size";

inline constexpr std::string_view kSum2Suffix = ".in_sum2";  // sums of squared activations
inline constexpr std::string_view kSumSuffix = ".in_sum";    // plain sums (optional, read and ignored)
inline constexpr std::string_view kCountsSuffix = ".counts";

}  // namespace quant::imatrix_keys
