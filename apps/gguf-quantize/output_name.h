// The output file name gguf-quantize picks when only IN and RECIPE are given.
#pragma once

#include <string>

#include "quant/recipe.h"

// Next to the input, the input's name with its trailing float type tag (-bf16, -F16, .f32, _fp16)
// replaced by the recipe's name, or the recipe's name appended: "dir/Qwen3-8B-BF16.gguf" ->
// "dir/Qwen3-8B-Q4_K_M.gguf", "model.gguf" -> "model-Q4_K_M.gguf". (llama-quantize writes
// ggml-model-TYPE.gguf instead; a name that keeps the model's is easier to find again.)
std::string default_output(const std::string& input, const quant::Recipe& recipe);
