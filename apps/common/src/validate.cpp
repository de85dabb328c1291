#include "appcommon/validate.h"

#include <cmath>
#include <cstdio>

#include "appcommon/cli.h"

namespace appcommon {

namespace {

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace

int check_threads(long long n, std::string_view option) {
    if (n < 1 || n > kMaxThreads) {
        throw UsageError{std::string(option) + " must be between 1 and " + std::to_string(kMaxThreads) + ", got " +
                         std::to_string(n)};
    }
    return static_cast<int>(n);
}

float check_finite(float v, std::string_view option, double lo, double hi) {
    if (!std::isfinite(v) || v < lo || v > hi) {
        throw UsageError{std::string(option) + " must be a number from " + number(lo) + " to " + number(hi) +
                         ", got " + number(v)};
    }
    return v;
}

int check_range(long long v, std::string_view option, long long lo, long long hi, std::string_view hint) {
    if (v < lo || v > hi) {
        std::string msg = std::string(option) + " must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                          ", got " + std::to_string(v);
        if (!hint.empty()) msg += " (" + std::string(hint) + ")";
        throw UsageError{msg};
    }
    return static_cast<int>(v);
}

}  // namespace appcommon
