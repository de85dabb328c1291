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
// Smaller versions of a model, for quick runs and tests; 0 keeps the model's own count.
struct Shrink {
    uint32_t n_layers = 0;  // the first N blocks
    uint32_t n_vocab = 0;
    uint32_t n_expert = 0;  // experts per layer (the used count becomes at most this)
};

// The model of `preset`, shrunk; throws std::invalid_argument for an unknown preset or a count above
// the model's.
ModelSpec make_model(const std::string& preset, Shrink shrink = {});
// gemma-4-26b-a4b (gemma4_shapes.cpp): its layers differ by kind, so it has its own builder.
ModelSpec gemma4_model(const std::string& preset, const Shrink& shrink);

}  // namespace synth
