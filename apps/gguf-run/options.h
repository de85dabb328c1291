// gguf-run's modes use the shared model options (apps/common) under their own namespace.
#pragma once

#include "appcommon/model_options.h"

namespace gguf_run {

namespace po = boost::program_options;
using appcommon::CommonOptions;
using appcommon::load;
using appcommon::Loaded;
using appcommon::model_description;
using appcommon::model_label;
using appcommon::normalize_args;
using appcommon::parse;

}  // namespace gguf_run
