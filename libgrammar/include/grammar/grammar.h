// GBNF grammars (llama.cpp's format, grammars/README.md there): parsed into rules of alternatives of
// elements, with groups and repetitions turned into generated rules. Knows no model; the Matcher
// (matcher.h) applies a grammar to a vocabulary's tokens.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace grammar {

// A malformed grammar or schema; what() is one line naming the position ("line 3, column 7: ...").
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct CharRange {
    uint32_t lo, hi;  // code points, inclusive
};

enum class ElementKind : uint8_t {
    End,      // closes an alternative
    Chars,    // one code point in (or, negated, outside) the ranges
    RuleRef,  // another rule
    Token,    // one whole token by id (or, negated, any other token)
};

struct Element {
    Element() = default;
    explicit Element(ElementKind k) : kind(k) {}

    ElementKind kind = ElementKind::End;
    bool negated = false;
    uint32_t rule = 0;             // RuleRef
    int32_t token = -1;            // Token, once resolved against a vocabulary
    std::string token_text;        // Token written as <text>: resolved by the Matcher
    std::vector<CharRange> ranges;  // Chars

    bool matches(uint32_t cp) const;
    // Whether some code point in [lo, hi] matches (for a character cut off at the end of a token).
    bool matches_any(uint32_t lo, uint32_t hi) const;
};

using Alternative = std::vector<Element>;  // ends with an End element

struct Rule {
    std::string name;
    std::vector<Alternative> alternatives;
};

class Grammar {
public:
    // Parses GBNF source; throws grammar::Error (one line: position and what is wrong) on malformed
    // input, an undefined rule, a missing "root" rule or left recursion.
    static Grammar parse(std::string_view source);

    const std::vector<Rule>& rules() const { return rules_; }
    uint32_t root() const { return root_; }
    // Rules written back as GBNF (generated rules included), for -v and tests.
    std::string to_string() const;

private:
    friend class Parser;
    std::vector<Rule> rules_;
    uint32_t root_ = 0;
};

}  // namespace grammar
