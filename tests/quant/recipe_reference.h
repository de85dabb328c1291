// Reading what llama.cpp recorded for the tiny fixtures: REFERENCE.md's file sizes and the
// per-tensor types files. Shared by the recipe conformance and gguf-quantize end-to-end tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fixtures.h"

namespace testing_support {

// File bytes of llama-quantize's output for MODEL ("dense", "moe"), RECIPE and imatrix use.
inline std::optional<uint64_t> llama_cpp_file_bytes(const std::string& model, const std::string& recipe,
                                                    bool imatrix) {
    std::ifstream in(fixture("llama-cpp/REFERENCE.md"));
    std::string line;
    // Table rows: "| tiny-dense | Q8_0 | no | 7386048 | ...".
    while (std::getline(in, line)) {
        std::vector<std::string> cells;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, '|')) {
            const size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
            cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
        }
        if (cells.size() < 5 || cells[1] != "tiny-" + model || cells[2] != recipe) continue;
        if (cells[3] == (imatrix ? "yes" : "no")) return std::stoull(cells[4]);
    }
    return std::nullopt;
}

inline std::filesystem::path llama_cpp_types_file(const std::string& model, const std::string& recipe, bool imatrix) {
    return fixture("llama-cpp/types/" + model + "-" + recipe + (imatrix ? "-imyes.txt" : "-imno.txt"));
}

// (tensor name, type name) pairs in the file's order.
inline std::vector<std::pair<std::string, std::string>> read_types_file(const std::filesystem::path& path) {
    std::vector<std::pair<std::string, std::string>> out;
    std::ifstream in(path);
    std::string name, type;
    while (in >> name >> type) out.emplace_back(name, type);
    return out;
}

}  // namespace testing_support
