// Small text helpers the apps share.
#pragma once

#include <cstdint>
#include <string>

namespace appcommon {

// llama.cpp's -e: \n \r \t \v \f \a \b \0 \\ \' \" \? and \xHH become the characters they name; any
// other backslash stays as it is (so Windows paths and regexes survive).
std::string process_escapes(const std::string& s);

// A size as gguf-split takes it: a positive whole number with M (10^6 bytes) or G (10^9 bytes).
// Throws BadValue.
uint64_t parse_split_size(const std::string& s);

}  // namespace appcommon
