// Replays the fuzzer's minimized corpus through the reader in the normal build: each input either
// parses or is rejected with gguf::Error; anything else (another exception, a crash) fails.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gguf/error.h"
#include "gguf/file.h"
#include "gguf/summary.h"

namespace fs = std::filesystem;

TEST(FuzzCorpus, EveryInputParsesOrIsRejectedCleanly) {
    const fs::path dir = fs::path(GGUF_SOURCE_DIR) / "fuzz" / "corpus";
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    size_t parsed = 0, rejected = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
        try {
            gguf::File f = gguf::File::parse(bytes, entry.path().filename().string());
            for (const auto& t : f.tensors()) EXPECT_EQ(f.tensor_data(t).size(), t.n_bytes());
            gguf::summarize(f);
            ++parsed;
        } catch (const gguf::Error& e) {
            EXPECT_NE(std::string(e.what()).find(" at offset "), std::string::npos) << e.what();
            ++rejected;
        }
    }
    EXPECT_GT(parsed, 0u);
    EXPECT_GT(rejected, 0u);
}
