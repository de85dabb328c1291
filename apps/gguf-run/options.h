// gguf-run's modes use the shared model options (apps/common) under their own namespace.
#pragma once

#include "appcommon/model_options.h"

namespace gguf_run {

using appcommon::add_unsupported_llama_options;
using appcommon::CommonOptions;
using appcommon::load;
using appcommon::Loaded;
using appcommon::model_description;
using appcommon::model_label;

}  // namespace gguf_run
