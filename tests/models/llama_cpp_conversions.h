// gguf-convert's and gguf-quantize's outputs against llama.cpp's converter and llama-quantize on the same
// checkpoint, byte for byte, through the hashes in tests/models/llama_cpp_conversions.txt (the files themselves are not kept; where one is
// present, e.g. written again by make_*_reference.py, the two are compared tensor by tensor for a
// readable difference).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/checksum.h"
#include "gguf/file.h"
#include "gguf_compare.h"
#include "quant/recipe.h"

namespace testing_support {

// The line of llama_cpp_conversions.txt naming `name`: its hash and size; false where there is none.
inline bool llama_cpp_conversion(const std::string& name, uint64_t& hash, uint64_t& size) {
    std::ifstream in(std::filesystem::path(GGUF_SOURCE_DIR) / "tests" / "models" / "llama_cpp_conversions.txt");
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::string hex, file;
        fields >> hex >> size >> file;
        if (file == name) {
            hash = std::stoull(hex, nullptr, 16);
            return true;
        }
    }
    return false;
}

// Expects the file at `ours` to be llama.cpp's `name` byte for byte; `copy` is where a copy of llama.cpp's
// file may lie.
inline void expect_llama_cpp_bytes(const std::string& ours, const std::string& name, const std::filesystem::path& copy) {
    if (std::filesystem::exists(copy)) {
        expect_same_gguf(gguf::File::open(ours), gguf::File::open(copy.string()));
    }
    uint64_t hash = 0, size = 0;
    ASSERT_TRUE(llama_cpp_conversion(name, hash, size)) << name << " is not in llama_cpp_conversions.txt";
    std::ifstream in(ours, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.size(), size) << name << ": size differs from llama.cpp's";
    EXPECT_EQ(gguf::xxh3_64(bytes), hash) << name << ": bytes differ from llama.cpp's (write its file with "
                                          << "make_*_reference.py next to the test for a tensor-level diff)";
}

// Quantizes `bf16` (gguf-convert's bf16 file of the checkpoint) with `recipe` and no imatrix into
// `out`, as gguf-quantize does, and expects llama-quantize's bytes for `name`.
inline void expect_llama_quantize_bytes(const std::string& bf16, const std::string& recipe, const std::string& name,
                                        const std::filesystem::path& out) {
    const gguf::File in = gguf::File::open(bf16);
    quant::PlanInputs inputs;
    inputs.recipe = quant::find_recipe(recipe);
    quant::write_quantized(in, quant::make_plan(in, inputs), nullptr, out.string());
    expect_llama_cpp_bytes(out.string(), name, out.parent_path() / ("llama-" + name));
}

}  // namespace testing_support
