// Checks of option values that the apps' option code calls as soon as a value is parsed, so a
// bad flag fails with one usage error before any model is read. Each throws UsageError naming the
// option; they hold no parsing of their own, so they work whatever parses the command line.
#pragma once

#include <string>
#include <string_view>

namespace appcommon {

// Worker threads: 1..kMaxThreads. More is a typo, not a machine (ggml caps at 512 too), and
// OpenMP crashes trying to start tens of thousands of threads.
inline constexpr int kMaxThreads = 512;
int check_threads(long long n, std::string_view option);

// A sampling or scaling parameter must be a finite number within [lo, hi].
float check_finite(float v, std::string_view option, double lo, double hi);

// An integer option within [lo, hi], e.g. "--chunks must be -1 (all) or at least 1".
int check_range(long long v, std::string_view option, long long lo, long long hi, std::string_view hint = {});

}  // namespace appcommon
