// The one error type of the runtime: a message that already names the model file, tensor or option at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace runtime {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace runtime
