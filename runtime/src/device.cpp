#include "runtime/device.h"

#include <cctype>
#include <charconv>

#include "runtime/error.h"

namespace runtime {

std::string Device::name() const { return is_cpu() ? "CPU" : "CUDA" + std::to_string(index); }

Device Device::parse(std::string_view text) {
    std::string upper;
    for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (upper == "CPU") return cpu();
    if (upper.starts_with("CUDA")) {
        std::string_view digits = std::string_view(upper).substr(4);
        if (digits.starts_with(":")) digits.remove_prefix(1);
        int index = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
        if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && index >= 0) {
            return cuda(index);
        }
    }
    throw Error("unknown device '" + std::string(text) + "' (expected CPU or CUDA<n>)");
}

}  // namespace runtime
