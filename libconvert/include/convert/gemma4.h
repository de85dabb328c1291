// Gemma 4 and its assistant draft head in gguf-convert (gemma4_convert.cpp): what differs from the
// generic decoder path (tensor names, the generated rope_freqs, the hyper-parameter keys and order,
// the "gemma4" tokenizer model).
#pragma once

#include <string>

#include "convert/architecture.h"
#include "convert/checkpoint.h"
#include "convert/hf_config.h"
#include "convert/outtype.h"
#include "convert/tensor_plan.h"
#include "convert/vocab.h"
#include "gguf/metadata.h"

namespace convert {

bool is_gemma4_assistant(const Architecture& arch);
void plan_gemma4(const Architecture& arch, const Checkpoint& checkpoint, OutType outtype, TensorPlan& plan);
void add_gemma4_hparams(gguf::Metadata& m, const Architecture& arch, const HfConfig& h, uint32_t file_type);
Vocab load_gemma4_vocab(const std::string& dir, const HfConfig& hparams);

}  // namespace convert
