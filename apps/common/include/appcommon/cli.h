// What every app's main shares: error reporting and exit codes, terminal detection, progress.
#pragma once

#include <cstdio>
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

// Progress of long work on stderr. On a terminal one line is redrawn after each step:
//   [ 12/291]   4.1%  3.2 tensors/s  0:04 elapsed  ETA 1:27  blk.3.ffn_up_exps.weight
// Elsewhere (a log file, CI) a plain line is written at most every `interval` seconds:
//   progress: 12/291 tensors (4.1%), 3.2 tensors/s, 0:04 elapsed, ETA 1:27
// so short runs write nothing and long ones leave a readable trail.
class Progress {
public:
    explicit Progress(size_t total, std::string unit = "tensors");
    // For tests: where the lines go, whether it counts as a terminal, and the clock (seconds).
    Progress(size_t total, std::string unit, std::FILE* out, bool terminal, std::function<double()> clock,
             double interval = 10);
    void step(const std::string& label);
    // Jumps to `done` of total (perplexity reports chunks done, not single steps).
    void set(size_t done, const std::string& label = "");
    void done();  // clears the terminal line

private:
    void show(const std::string& label);
    size_t total_;
    std::string unit_;
    std::FILE* out_;
    bool terminal_;
    std::function<double()> clock_;
    double interval_;
    double start_ = 0, last_print_ = 0;
    size_t current_ = 0;
    bool drawn_ = false;
};

// "1:27", "1:02:03"
std::string format_duration(double seconds);

}  // namespace appcommon
