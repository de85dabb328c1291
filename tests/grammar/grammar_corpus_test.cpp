// Replays fuzz/grammar-corpus (grammar-fuzz's minimized corpus, docs/fuzzing.md) through what the fuzz
// target does: every input converts and matches or fails with grammar::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "grammar_exercise.h"

TEST(GrammarFuzzCorpus, EveryInputMatchesOrIsRejectedCleanly) {
    const auto dir = std::filesystem::path(GGUF_SOURCE_DIR) / "fuzz/grammar-corpus";
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        EXPECT_NO_THROW(grammar_fuzz::exercise(ss.str())) << e.path();
        ++n;
    }
    EXPECT_GT(n, 500u);
}
