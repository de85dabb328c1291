#include "output_name.h"

#include <algorithm>
#include <cctype>

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

std::string default_output(const std::string& input, const quant::Recipe& recipe) {
    const size_t slash = input.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : input.substr(0, slash + 1);
    std::string stem = input.substr(dir.size());
    if (lower(stem).ends_with(".gguf")) stem.resize(stem.size() - 5);
    for (const char* tag : {"bf16", "fp16", "fp32", "f16", "f32"}) {
        const std::string t(tag);
        const std::string low = lower(stem);
        if (low.size() > t.size() && low.ends_with(t) && std::string("-._").find(low[low.size() - t.size() - 1]) != std::string::npos) {
            stem.resize(stem.size() - t.size() - 1);
            break;
        }
    }
    return dir + stem + "-" + std::string(recipe.name) + ".gguf";
}
