// The sampling options of generation and chat: llama.cpp's spellings and defaults for every sampler,
// the chain's order (--samplers), logit bias and grammar-constrained output (--grammar, --json-schema).
#pragma once

#include <string>

#include "appcommon/options.h"
#include "runtime/sampler.h"

namespace gguf_run {

struct SamplingOptions {
    runtime::SamplerParams sampler;
    std::string grammar, grammar_file, json_schema, json_schema_file;

    void add_to(appcommon::OptionSet& opts);
    // After parsing, before the model is loaded: reads the grammar or schema files, converts a JSON schema
    // to a grammar and checks every value; problems are UsageErrors (or runtime::Error for a file).
    void finish();
    // -v: the settings in one line, and the grammar when there is one.
    std::string describe() const;
};

}  // namespace gguf_run
