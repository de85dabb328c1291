#include "unicode.h"

#include <algorithm>

namespace runtime::unicode {

uint8_t props_slow(uint32_t cp) {
    const PropsRange* end = kPropsRanges + kPropsRangeCount;
    const PropsRange* it =
        std::upper_bound(kPropsRanges, end, cp, [](uint32_t v, const PropsRange& r) { return v < r.first; });
    // kPropsRanges starts at 0, so `it` is never the first entry; code points past U+10FFFF fall in
    // the last range (unassigned), which is "other" like any unassigned code point.
    return (it - 1)->props;
}

uint32_t decode_lenient(std::string_view s, size_t& pos) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
    const auto cont = [&](size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
    const uint8_t b0 = byte(pos);
    if (b0 < 0x80) {
        pos += 1;
        return b0;
    }
    if ((b0 & 0xE0) == 0xC0 && cont(pos + 1)) {
        const uint32_t cp = (uint32_t(b0 & 0x1F) << 6) | (byte(pos + 1) & 0x3F);
        pos += 2;
        return cp;
    }
    if ((b0 & 0xF0) == 0xE0 && cont(pos + 1) && cont(pos + 2)) {
        const uint32_t cp = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(byte(pos + 1) & 0x3F) << 6) | (byte(pos + 2) & 0x3F);
        pos += 3;
        return cp;
    }
    if ((b0 & 0xF8) == 0xF0 && cont(pos + 1) && cont(pos + 2) && cont(pos + 3)) {
        const uint32_t cp = (uint32_t(b0 & 0x07) << 18) | (uint32_t(byte(pos + 1) & 0x3F) << 12) |
                            (uint32_t(byte(pos + 2) & 0x3F) << 6) | (byte(pos + 3) & 0x3F);
        if (cp < 0x110000) {
            pos += 4;
            return cp;
        }
    }
    pos += 1;
    return kReplacement;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

namespace {

size_t encoded_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

}  // namespace

bool is_lenient_canonical(std::string_view s) {
    size_t pos = 0;
    while (pos < s.size()) {
        if (static_cast<uint8_t>(s[pos]) < 0x80) {
            ++pos;
            continue;
        }
        const size_t start = pos;
        const uint32_t cp = decode_lenient(s, pos);
        if (encoded_length(cp) != pos - start) return false;  // U+FFFD for one bad byte, or overlong
    }
    return true;
}

std::string lenient_canonical(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    size_t pos = 0;
    while (pos < s.size()) append_utf8(out, decode_lenient(s, pos));
    return out;
}

Utf8Scan scan_utf8(std::string_view s) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
    size_t pos = 0;
    while (pos < s.size()) {
        const uint8_t b0 = byte(pos);
        if (b0 < 0x80) {
            ++pos;
            continue;
        }
        // Length and the allowed range of the second byte for each lead (Unicode Table 3-7); the
        // narrowed ranges exclude overlong forms, surrogates and code points past U+10FFFF.
        size_t len = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            len = 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        } else {
            return {pos, 1, false};
        }
        size_t k = 1;
        for (; k < len && pos + k < s.size(); ++k) {
            const uint8_t b = byte(pos + k);
            const bool ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
            if (!ok) return {pos, k, false};
        }
        if (k < len) return {pos, k, true};
        pos += len;
    }
    return {pos, 0, false};
}

}  // namespace runtime::unicode
