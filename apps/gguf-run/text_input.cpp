#include "text_input.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "appcommon/cli.h"
#include "runtime/error.h"

namespace gguf_run {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw runtime::Error(path + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

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

}  // namespace gguf_run
