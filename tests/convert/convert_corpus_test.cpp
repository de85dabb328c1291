// Replays fuzz/convert-corpus (convert-fuzz's minimized corpus, docs/fuzzing.md) through what the fuzz
// target does: every input is read or fails with libconvert's (or the mapping's) own error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "convert_exercise.h"

TEST(ConvertFuzzCorpus, EveryInputIsReadOrRejectedCleanly) {
    const auto dir = std::filesystem::path(GGUF_SOURCE_DIR) / "fuzz/convert-corpus";
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(e.path(), std::ios::binary);
        const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_NO_THROW(convert_fuzz::exercise(bytes.data(), bytes.size())) << e.path();
        ++n;
    }
    EXPECT_GT(n, 1000u);
}
