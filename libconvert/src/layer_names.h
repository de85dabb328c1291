// Reading the block index out of a Hugging Face tensor name, shared by the tensor plans
// (tensor_plan.cpp, qwen35_plan.cpp) and gemma4's converter.
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace convert {

// A decimal index of at most 9 digits, the whole of `s`.
inline bool parse_index(std::string_view s, int64_t& out) {
    if (s.empty() || s.size() > 9) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "model.layers.12.rest" -> (12, "rest").
inline bool split_layer(std::string_view name, int64_t& layer, std::string_view& rest) {
    constexpr std::string_view prefix = "model.layers.";
    if (!name.starts_with(prefix)) return false;
    name.remove_prefix(prefix.size());
    const size_t dot = name.find('.');
    if (dot == std::string_view::npos || !parse_index(name.substr(0, dot), layer)) return false;
    rest = name.substr(dot + 1);
    return true;
}

}  // namespace convert
