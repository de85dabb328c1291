// The calibration / evaluation text of the perplexity and imatrix modes.
#pragma once

#include <string>

namespace gguf_run {

std::string read_text_file(const std::string& path);
// Before the model and its context are allocated: a token holds at least one byte of text (plus
// a possible BOS or added leading space), so a file this short cannot fill one chunk.
void check_text_length(const std::string& path, int n_ctx);
// "[done/total] chunks" on stderr when it is a terminal.
void chunk_progress(int done, int total);

}  // namespace gguf_run
