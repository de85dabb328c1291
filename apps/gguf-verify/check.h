// One check of gguf-verify and its outcome: passed, failed or skipped, with a one-line figure, the
// problems found (each naming the tensor, row, key or position) and numbers for --json.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace verify {

enum class Status { Passed, Failed, Skipped };
const char* status_name(Status s);  // "passed", "failed", "skipped"

struct CheckResult {
    std::string name;    // "structure", "scan", ...
    Status status = Status::Skipped;
    std::string figure;  // "291 tensors, 3.1 GB at 9.8 GB/s" or why it was skipped
    std::vector<std::string> problems;
    std::vector<std::pair<std::string, double>> metrics;

    static CheckResult skipped(std::string name, std::string why) {
        CheckResult r;
        r.name = std::move(name);
        r.figure = std::move(why);
        return r;
    }
    // Failed when there are problems, passed otherwise.
    void conclude() { status = problems.empty() ? Status::Passed : Status::Failed; }
};

}  // namespace verify
