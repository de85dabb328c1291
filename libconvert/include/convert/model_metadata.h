// The general.* and <arch>.* GGUF keys of a converted model, with llama.cpp's names, types and
// order, derived from config.json and the planned tensors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convert/architecture.h"
#include "convert/hf_config.h"
#include "convert/tensor_plan.h"
#include "gguf/metadata.h"

namespace convert {

// llama.cpp's name for a model directory: "tiny-dense" -> "Tiny Dense" (words that are all lower
// case are title-cased unless they look like versions or sizes).
std::string model_title(std::string_view dir_name);

// llama.cpp's size label: "6.8M"; MoE models "16x3.7M" (experts x parameters per expert path).
std::string size_label(const TensorPlan& plan);

// general.architecture, general.type, general.name, general.size_label.
void add_general_metadata(gguf::Metadata& m, const Architecture& arch, const std::string& name,
                          const std::string& size_label);

// <arch>.* hyperparameters and general.file_type, in the order llama.cpp writes them. Settings
// llama.cpp ignores (an unsupported RoPE scaling type) are reported through `warnings`.
void add_hparams_metadata(gguf::Metadata& m, const Architecture& arch, const HfConfig& hparams, uint32_t file_type,
                          std::vector<std::string>& warnings);

}  // namespace convert
