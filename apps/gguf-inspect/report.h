// gguf-inspect's views of one file, or of two side by side, as text or JSON.
#pragma once

#include <optional>
#include <ostream>
#include <regex>
#include <string>

#include "gguf/file.h"

struct InspectOptions {
    bool tensors = false;
    std::optional<std::regex> tensor_filter;  // --tensors REGEX
    bool layers = false;
    bool checksums = false;
    bool no_tensors = false;  // --no-tensors
    size_t array_preview = 8;
};

void print_text(std::ostream& out, const gguf::File& f, const InspectOptions& opt);
void print_json(std::ostream& out, const gguf::File& f, const InspectOptions& opt);
void print_diff_text(std::ostream& out, const gguf::File& a, const gguf::File& b);
void print_diff_json(std::ostream& out, const gguf::File& a, const gguf::File& b);
