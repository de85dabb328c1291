#include "report.h"

#include <cstdio>

#include "appcommon/json_writer.h"

namespace verify {

const char* status_name(Status s) {
    switch (s) {
        case Status::Passed: return "passed";
        case Status::Failed: return "failed";
        case Status::Skipped: return "skipped";
    }
    return "?";
}

bool any_failed(const std::vector<CheckResult>& checks) {
    for (const auto& c : checks) {
        if (c.status == Status::Failed) return true;
    }
    return false;
}

namespace {

// Lists stay readable on a terminal: the first problems, then how many more.
constexpr size_t kShownProblems = 10;

std::string xml_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default:
                // XML 1.0 allows no control characters but tab and newline
                if (c < 0x20 && c != '\t' && c != '\n') {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out;
}

}  // namespace

void write_summary(std::ostream& out, const std::string& model, const std::vector<CheckResult>& checks) {
    out << "gguf-verify: " << model << "\n";
    size_t failed = 0, passed = 0;
    for (const auto& c : checks) {
        const char* tag = c.status == Status::Passed ? "PASS" : c.status == Status::Failed ? "FAIL" : "skip";
        char head[64];
        std::snprintf(head, sizeof head, "  %s  %-10s  ", tag, c.name.c_str());
        out << head << c.figure << "\n";
        for (size_t i = 0; i < c.problems.size() && i < kShownProblems; ++i) out << "          " << c.problems[i] << "\n";
        if (c.problems.size() > kShownProblems) {
            out << "          ... and " << c.problems.size() - kShownProblems << " more (--json lists all)\n";
        }
        failed += c.status == Status::Failed;
        passed += c.status == Status::Passed;
    }
    if (failed) {
        out << "result: FAILED (" << failed << " of " << checks.size() << " checks failed)\n";
    } else {
        out << "result: passed (" << passed << " passed, " << checks.size() - passed << " skipped)\n";
    }
}

void write_json(std::ostream& out, const std::string& model, const std::vector<CheckResult>& checks) {
    appcommon::JsonWriter j(out);
    j.begin_object();
    j.field("model", model);
    j.field("result", any_failed(checks) ? "failed" : "passed");
    j.key("checks").begin_array();
    for (const auto& c : checks) {
        j.begin_object();
        j.field("name", c.name).field("status", status_name(c.status)).field("figure", c.figure);
        j.key("problems").begin_array();
        for (const auto& p : c.problems) j.value(p);
        j.end_array();
        j.key("metrics").begin_object();
        for (const auto& [k, v] : c.metrics) j.field(k, v);
        j.end_object();
        j.end_object();
    }
    j.end_array();
    j.end_object();
    out << "\n";
}

void write_junit(std::ostream& out, const std::string& model, const std::vector<CheckResult>& checks) {
    size_t failures = 0, skipped = 0;
    for (const auto& c : checks) {
        failures += c.status == Status::Failed;
        skipped += c.status == Status::Skipped;
    }
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out << "<testsuites>\n<testsuite name=\"gguf-verify " << xml_escape(model) << "\" tests=\"" << checks.size()
        << "\" failures=\"" << failures << "\" errors=\"0\" skipped=\"" << skipped << "\">\n";
    for (const auto& c : checks) {
        out << "  <testcase classname=\"gguf-verify\" name=\"" << xml_escape(c.name) << "\">\n";
        if (c.status == Status::Failed) {
            out << "    <failure message=\"" << xml_escape(c.figure) << "\">";
            for (const auto& p : c.problems) out << xml_escape(p) << "\n";
            out << "</failure>\n";
        } else if (c.status == Status::Skipped) {
            out << "    <skipped message=\"" << xml_escape(c.figure) << "\"/>\n";
        }
        out << "    <system-out>" << xml_escape(c.figure) << "</system-out>\n";
        out << "  </testcase>\n";
    }
    out << "</testsuite>\n</testsuites>\n";
}

}  // namespace verify
