// The structure check (what the validating reader proved, and types fit for weights) and the model check:
// hyper-parameters the runtime needs, present and consistent with the tensors (the runtime's loader binds
// and shape-checks every weight), the tokenizer loads and matches the embedding, the chat template is known.
#pragma once

#include <memory>

#include "check.h"
#include "gguf/file.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace verify {

CheckResult structure_check(const gguf::File& file);

struct LoadedModel {
    std::unique_ptr<runtime::Model> model;
    std::unique_ptr<runtime::Tokenizer> tokenizer;
};

// Loads the model (with the placement options) and its tokenizer; what fails to load is the check's
// problem and leaves the pointer empty.
CheckResult model_check(const std::string& path, const runtime::ModelOptions& options, LoadedModel& out);

}  // namespace verify
