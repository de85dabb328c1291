// gguf-verify's three outputs: the human summary (stderr), --json (stdout) and --junit FILE.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "check.h"

namespace verify {

bool any_failed(const std::vector<CheckResult>& checks);
void write_summary(std::ostream& out, const std::string& model, const std::vector<CheckResult>& checks);
void write_json(std::ostream& out, const std::string& model, const std::vector<CheckResult>& checks);
// JUnit XML as CI systems read it: one testcase per check, <failure> and <skipped> where they apply.
void write_junit(std::ostream& out, const std::string& model, const std::vector<CheckResult>& checks);

}  // namespace verify
