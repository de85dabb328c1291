// The shapes, tensor names and metadata of real models, for random-weight benchmark files: what a
// converter would write for the model, before a recipe picks each tensor's type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/metadata.h"
#include "gguf/types.h"

namespace synth {

// How a float tensor is filled (block-quantized ones are random blocks whatever their role).
enum class Fill { Ones, Zeros, Gaussian };

struct TensorSpec {
    std::string name;
    std::vector<int64_t> dims;  // ggml order
    Fill fill = Fill::Gaussian;
};

struct ModelSpec {
    std::string preset;
    gguf::Metadata metadata;  // without general.file_type (the recipe decides it)
    std::vector<TensorSpec> tensors;
};

// Preset names, for --help.
std::vector<std::string> preset_names();
// The model of `preset` with its first `n_layers` blocks (0: all of them); throws std::invalid_argument
// for an unknown preset or a layer count above the model's.
ModelSpec make_model(const std::string& preset, uint32_t n_layers);

}  // namespace synth
