// The one error type of libconvert: a one-line message that already names the file, tensor or key.
#pragma once

#include <stdexcept>
#include <string>

namespace convert {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace convert
