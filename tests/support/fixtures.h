// Where the shared fixtures live, and a guard that skips a test when they are absent.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace testing_support {

// ../shared beside the checkout, or $GGUF_SHARED_DIR.
inline std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("GGUF_SHARED_DIR")) return env;
    return GGUF_DEFAULT_SHARED_DIR;
}

inline std::filesystem::path fixture(const std::string& relative) { return shared_dir() / "fixtures" / relative; }

}  // namespace testing_support

// Skips (not fails) the current test when the fixture file is missing, saying which.
#define REQUIRE_FIXTURE(relative)                                                                  \
    do {                                                                                           \
        if (!std::filesystem::exists(testing_support::fixture(relative)))                          \
            GTEST_SKIP() << "fixture " << testing_support::fixture(relative).string()              \
                         << " not found (../shared absent); skipping";                             \
    } while (0)
