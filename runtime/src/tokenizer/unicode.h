// Code point properties and UTF-8 helpers for the tokenizers (internal to the runtime).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace runtime::unicode {

// One byte per code point: the general-category class in the low bits, White_Space in bit 3, the
// letter case in bits 4 and 5.
// The values are written by runtime/tools/gen_unicode_tables.py and must stay in step with it.
enum Category : uint8_t {
    kOther = 0,  // C*: control, format, private use, surrogate, unassigned
    kLetter = 1,
    kMark = 2,
    kNumber = 3,
    kPunctuation = 4,
    kSymbol = 5,
    kSeparator = 6,
};
constexpr uint8_t kCategoryMask = 0x07;
constexpr uint8_t kWhitespace = 0x08;
// Letters only: Lu or Lt (upper and title case), Ll (lower case); Lm and Lo carry neither.
constexpr uint8_t kUpperOrTitle = 0x10;
constexpr uint8_t kLower = 0x20;

struct PropsRange {
    uint32_t first;  // the range runs up to the next entry's `first`
    uint8_t props;
};

extern const uint8_t kAsciiProps[128];
extern const PropsRange kPropsRanges[];
extern const size_t kPropsRangeCount;

uint8_t props_slow(uint32_t cp);

inline uint8_t props(uint32_t cp) { return cp < 128 ? kAsciiProps[cp] : props_slow(cp); }

constexpr uint32_t kReplacement = 0xFFFD;

// Bytes of the sequence a lead byte announces, from its high nibble alone (continuation bytes and
// invalid leads count as 1). This is how llama.cpp cuts text into symbols.
inline size_t sequence_length(uint8_t lead) {
    static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLengths[lead >> 4];
}

// Decodes the code point at `pos` and advances past it, as llama.cpp does for tokenizer input: the
// lead byte sets the length and continuation bytes are checked, but overlong forms and surrogates
// are accepted. A malformed sequence (or one beyond U+10FFFF) gives U+FFFD and consumes one byte.
uint32_t decode_lenient(std::string_view s, size_t& pos);

// Appends the UTF-8 form of cp (< 0x110000).
void append_utf8(std::string& out, uint32_t cp);

// True when re-encoding each decode_lenient() code point reproduces `s` byte for byte, i.e. the
// byte-level BPE can work on `s` as it is.
bool is_lenient_canonical(std::string_view s);

// `s` with every sequence decode_lenient() rejects replaced by U+FFFD and every accepted one
// re-encoded in its shortest form.
std::string lenient_canonical(std::string_view s);

// Length of the longest prefix of `s` that is well-formed UTF-8 (Unicode Table 3-7) and of the
// maximal ill-formed or truncated piece that follows it (0 at the end of `s`); `truncated` tells
// whether that piece could still become valid with more bytes.
struct Utf8Scan {
    size_t valid = 0;
    size_t bad = 0;
    bool truncated = false;
};
Utf8Scan scan_utf8(std::string_view s);

}  // namespace runtime::unicode
