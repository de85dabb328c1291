// UTF-8 decoding for grammar sources and token bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>

namespace grammar::utf8 {

// Length of the sequence a lead byte starts (0: not a lead byte).
inline int sequence_length(unsigned char b) {
    if (b < 0x80) return 1;
    if ((b & 0xE0) == 0xC0) return 2;
    if ((b & 0xF0) == 0xE0) return 3;
    if ((b & 0xF8) == 0xF0) return 4;
    return 0;
}

// The first code point of s and its length in bytes; length 0 when s does not start with a complete,
// well-formed sequence.
inline std::pair<uint32_t, size_t> decode_one(std::string_view s) {
    if (s.empty()) return {0, 0};
    const auto b0 = static_cast<unsigned char>(s[0]);
    const int n = sequence_length(b0);
    if (n == 0 || s.size() < static_cast<size_t>(n)) return {0, 0};
    if (n == 1) return {b0, 1};
    uint32_t cp = b0 & (0x7F >> n);
    for (int i = 1; i < n; ++i) {
        const auto b = static_cast<unsigned char>(s[static_cast<size_t>(i)]);
        if ((b & 0xC0) != 0x80) return {0, 0};
        cp = (cp << 6) | (b & 0x3F);
    }
    // overlong forms, surrogates and values past U+10FFFF are not characters (as the decoders treat them)
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0, 0};
    return {cp, static_cast<size_t>(n)};
}

// The code points a character could be, given only its first bytes (an incomplete sequence); lo > hi
// when no valid character starts so (an overlong form, a surrogate, past U+10FFFF).
inline std::pair<uint32_t, uint32_t> partial_range(std::string_view prefix) {
    const int n = sequence_length(static_cast<unsigned char>(prefix[0]));
    if (n < 2) return {1, 0};
    uint32_t cp = static_cast<unsigned char>(prefix[0]) & (0x7F >> n);
    for (size_t i = 1; i < prefix.size(); ++i) cp = (cp << 6) | (static_cast<unsigned char>(prefix[i]) & 0x3F);
    const int missing = n - static_cast<int>(prefix.size());
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t lo = std::max(cp << (6 * missing), kMin[n]);
    uint32_t hi = std::min<uint32_t>((cp << (6 * missing)) | ((1u << (6 * missing)) - 1), 0x10FFFF);
    if (n == 3 && lo >= 0xD800 && hi <= 0xDFFF) return {1, 0};  // only surrogates
    return {lo, hi};
}

}  // namespace grammar::utf8
