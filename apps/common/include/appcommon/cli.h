// What every app's main shares: error reporting and exit codes, terminal detection, progress.
#pragma once

#include <boost/program_options.hpp>

#include <functional>
#include <string>
#include <vector>

namespace appcommon {

// Thrown for bad command lines; run_main turns it into "error: ..." and exit status 2.
struct UsageError {
    std::string message;
};

// Runs an app body: any exception becomes one "error: ..." line on stderr and exit 1
// (2 for UsageError and for Boost.Program_options errors). Returns the exit status.
int run_main(const std::function<int()>& body);

bool stderr_is_terminal();

// Parses `options` and any number of positional arguments (the files a tool works on) into `vm`;
// returns the positional arguments in order.
std::vector<std::string> parse_command_line(int argc, char** argv,
                                            const boost::program_options::options_description& options,
                                            boost::program_options::variables_map& vm);

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
