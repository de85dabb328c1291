// The one error type of libgguf: a message that already names the file and offset when known.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace gguf {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// "FILE: WHAT at offset N", the form every parse error takes.
Error parse_error(const std::string& file, const std::string& what, uint64_t offset);

}  // namespace gguf
