// What every app's main shares: error reporting and exit codes, terminal detection, progress.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace appcommon {

// Thrown for bad command lines; run_main turns it into "error: ..." and exit status 2.
struct UsageError {
    std::string message;
};

// Runs an app body: any exception becomes one "error: ..." line on stderr and exit 1
// (2 for UsageError). Returns the exit status.
int run_main(const std::function<int()>& body);

bool stderr_is_terminal();

// "[ 3/291] blk.0.attn_q.weight ..." progress on stderr, only when stderr is a terminal.
class Progress {
public:
    explicit Progress(size_t total);
    void step(const std::string& label);
    void done();

private:
    size_t total_;
    size_t current_ = 0;
    bool enabled_;
};

}  // namespace appcommon
