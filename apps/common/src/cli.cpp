#include "appcommon/cli.h"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <new>

namespace appcommon {

int run_main(const std::function<int()>& body) {
    try {
        return body();
    } catch (const UsageError& e) {
        std::fprintf(stderr, "error: %s (see --help)\n", e.message.c_str());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(size_t total) : total_(total), enabled_(stderr_is_terminal()) {}

void Progress::step(const std::string& label) {
    ++current_;
    if (!enabled_) return;
    std::fprintf(stderr, "\r\033[K[%4zu/%4zu] %s", current_, total_, label.c_str());
    std::fflush(stderr);
}

void Progress::done() {
    if (enabled_ && current_ > 0) std::fprintf(stderr, "\r\033[K");
}

}  // namespace appcommon
