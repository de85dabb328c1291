// Converting a Hugging Face checkpoint directory into one GGUF file, streaming tensor by tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convert/outtype.h"
#include "gguf/file.h"
#include "gguf/metadata.h"

namespace convert {

struct ConvertOptions {
    std::string input_dir;
    std::string output_path;
    OutType outtype = OutType::Auto;
    // Called before each tensor is written: (index, total, GGUF name).
    std::function<void(size_t, size_t, const std::string&)> on_tensor;
    // Replace an existing output file (the app's --force). Inputs are never replaced.
    bool replace_existing = true;
    // Called with the finished header (metadata and tensor list) before any tensor data is produced
    // or a file created; throws to refuse it. gguf-convert passes the runtime's layout check, so a
    // file the runtime would reject is never written.
    std::function<void(const gguf::Metadata&, const std::vector<gguf::TensorInfo>&)> check_header;
};

struct ConvertSummary {
    std::string output_path;
    std::string hf_architecture;  // e.g. "LlamaForCausalLM"
    std::string architecture;     // GGUF, e.g. "llama"
    std::string outtype;          // resolved: "bf16", ...
    uint32_t file_type = 0;
    std::string name;             // general.name
    std::string size_label;
    std::string tokenizer_model;  // "gpt2" or "llama"
    std::string tokenizer_pre;
    size_t n_vocab = 0;
    size_t n_tensors = 0;
    uint64_t n_parameters = 0;
    uint64_t file_size = 0;
    std::map<std::string, size_t> tensors_per_type;  // "bf16" -> 44
    std::vector<std::string> warnings;
};

// Reads and validates everything (config, weights, tokenizer) before writing; writes through a
// temp file renamed into place only on success; refuses an output path that is one of the inputs.
ConvertSummary convert_checkpoint(const ConvertOptions& options);

}  // namespace convert
