// Small text helpers the apps share.
#pragma once

#include <string>

namespace appcommon {

// llama.cpp's -e: \n \r \t \v \f \a \b \0 \\ \' \" \? and \xHH become the characters they name; any
// other backslash stays as it is (so Windows paths and regexes survive).
std::string process_escapes(const std::string& s);

}  // namespace appcommon
