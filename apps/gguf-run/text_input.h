// The calibration / evaluation text of the perplexity and imatrix modes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "appcommon/model_options.h"
#include "runtime/perplexity.h"

namespace gguf_run {

// Before the model and its context are allocated: a token holds at least one byte of text (plus
// a possible BOS or added leading space), so a file this short cannot fill one chunk.
void check_text_length(const std::string& path, int n_ctx);
// "[done/total] chunks" on stderr when it is a terminal.
void chunk_progress(int done, int total);

// The text of `path` as l's tokenizer encodes it and its chunking for l's context (n_chunks -1: all),
// with progress on stderr; the counts are printed there first.
struct ChunkedText {
    std::vector<int32_t> tokens;
    runtime::PerplexityParams params;
};
ChunkedText chunked_text(const appcommon::Loaded& l, const std::string& path, int n_chunks);

}  // namespace gguf_run
