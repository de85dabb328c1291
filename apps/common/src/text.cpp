#include "appcommon/text.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "appcommon/options.h"

namespace appcommon {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string read_file(const std::string& path, const std::string& option) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error((option.empty() ? "" : option + ": ") + path + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string process_escapes(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[i + 1];
        char r = 0;
        switch (c) {
            case 'n': r = '\n'; break;
            case 'r': r = '\r'; break;
            case 't': r = '\t'; break;
            case 'v': r = '\v'; break;
            case 'f': r = '\f'; break;
            case 'a': r = '\a'; break;
            case 'b': r = '\b'; break;
            case '0': r = '\0'; break;
            case '\\': case '\'': case '"': case '?': r = c; break;
            case 'x': {
                const int hi = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
                const int lo = i + 3 < s.size() ? hex_digit(s[i + 3]) : -1;
                if (hi >= 0 && lo >= 0) {
                    out += static_cast<char>(hi * 16 + lo);
                    i += 3;
                } else {
                    out += s[i];
                }
                continue;
            }
            default: out += s[i]; continue;
        }
        out += r;
        ++i;
    }
    return out;
}

uint64_t parse_split_size(const std::string& s) {
    const char unit = s.empty() ? '\0' : s.back();
    if (unit != 'M' && unit != 'G') throw BadValue{"expected a size like 500M or 2G (M = 10^6, G = 10^9 bytes), got '" + s + "'"};
    const long long n = parse_int64(s.substr(0, s.size() - 1), 1, 1000000000LL);
    return static_cast<uint64_t>(n) * (unit == 'M' ? 1000000ull : 1000000000ull);
}

}  // namespace appcommon
