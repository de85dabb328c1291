// The --outtype choices and the GGUF file type each one records.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "gguf/types.h"

namespace convert {

enum class OutType { Auto, F32, F16, BF16, Q8_0 };

std::optional<OutType> parse_outtype(std::string_view s);  // "f32", "f16", "bf16", "q8_0", "auto"
std::string_view outtype_name(OutType t);
// The ggml type weights get (Auto must be resolved first).
gguf::GgmlType outtype_tensor_type(OutType t);
// general.file_type: llama.cpp's LlamaFileType (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32).
uint32_t outtype_file_type(OutType t);

}  // namespace convert
