#include "text_input.h"

#include <cstdio>
#include <filesystem>

#include "appcommon/cli.h"
#include "appcommon/text.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"

namespace gguf_run {

void check_text_length(const std::string& path, int n_ctx) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) throw runtime::Error(path + ": cannot open: " + ec.message());
    if (bytes + 2 < static_cast<uint64_t>(n_ctx)) {
        throw runtime::Error(path + ": " + std::to_string(bytes) + " bytes of text cannot fill one chunk of " +
                             std::to_string(n_ctx) + " tokens (lower -c)");
    }
}

void chunk_progress(int done, int total) {
    if (!appcommon::stderr_is_terminal()) return;
    std::fprintf(stderr, "\r[%d/%d] chunks", done, total);
    if (done == total) std::fprintf(stderr, "\n");
}

ChunkedText chunked_text(const appcommon::Loaded& l, const std::string& path, int n_chunks) {
    ChunkedText t;
    t.tokens = l.tokenizer->encode(appcommon::read_file(path), true, false);
    t.params = runtime::perplexity_params(*l.tokenizer, l.context->n_ctx(), n_chunks, chunk_progress);
    std::fprintf(stderr, "%zu tokens, chunks of %d, BOS %s\n", t.tokens.size(), t.params.n_ctx,
                 t.params.add_bos ? "yes" : "no");
    return t;
}

}  // namespace gguf_run
