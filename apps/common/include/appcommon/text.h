// Small text helpers the apps share.
#pragma once

#include <cstdint>
#include <string>

namespace appcommon {

// llama.cpp's -e: \n \r \t \v \f \a \b \0 \\ \' \" \? and \xHH become the characters they name; any
// other backslash stays as it is (so Windows paths and regexes survive).
std::string process_escapes(const std::string& s);

// The whole file at `path`, as bytes. One that cannot be read throws std::runtime_error
// "OPTION: PATH: cannot open", or "PATH: cannot open" without an option.
std::string read_file(const std::string& path, const std::string& option = {});

// A size as gguf-split takes it: a positive whole number with M (10^6 bytes) or G (10^9 bytes).
// Throws BadValue.
uint64_t parse_split_size(const std::string& s);

}  // namespace appcommon
