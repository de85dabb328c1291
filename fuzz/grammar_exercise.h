// What grammar-fuzz does with one input, shared with the unit test that replays fuzz/grammar-corpus: the
// input up to a NUL byte is read as GBNF and as a JSON schema, the rest is fed to the matcher byte by byte.
// Anything but grammar::Error escaping is a defect.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace grammar_fuzz {

inline const grammar::Vocabulary& byte_vocabulary() {
    static const grammar::Vocabulary v = [] {
        std::vector<std::string> pieces;
        for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
        pieces.push_back("\xC3\xA9");
        pieces.push_back("ab");
        pieces.push_back("");
        std::vector<bool> end(pieces.size(), false);
        end.back() = true;
        return grammar::Vocabulary(pieces, pieces, end);
    }();
    return v;
}

inline void match(const std::string& gbnf, std::string_view text) {
    const grammar::Grammar g = grammar::Grammar::parse(gbnf);
    (void)g.to_string();
    grammar::Matcher m(g, byte_vocabulary());
    std::vector<char> allowed;
    size_t steps = 0;
    for (unsigned char c : text) {
        if (++steps > 64) break;  // each step may fan out; a few dozen reach every kind of state
        m.allowed(allowed);
        if (!m.allows(c)) break;
        m.accept(c);
    }
    (void)m.complete();
}

inline void exercise(std::string_view input) {
    const size_t nul = input.find('\0');
    const std::string source(input.substr(0, nul));
    const std::string_view text = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
    try {
        match(source, text);
    } catch (const grammar::Error&) {
    }
    try {
        match(grammar::json_schema_to_gbnf(source), text);
    } catch (const grammar::Error&) {
    }
}

}  // namespace grammar_fuzz
