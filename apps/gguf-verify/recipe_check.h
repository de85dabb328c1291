// The recipe check: the types of the tensors against the recipe general.file_type names, as llama.cpp's
// llama-quantize would have chosen them (libquant's recipe rules), listing the tensors that differ.
#pragma once

#include <string>

#include "check.h"
#include "gguf/file.h"

namespace verify {

// `recipe_name` empty: every recipe with the file's general.file_type is tried (Q4_K_M and Q4_K_L share
// one) and the closest is reported.
CheckResult recipe_check(const gguf::File& file, const std::string& recipe_name);

}  // namespace verify
