// libFuzzer target for libgrammar: any input, read as GBNF and as a JSON schema, must convert and match or
// be rejected with grammar::Error, nothing else. Input: the grammar or schema, then after a NUL byte the
// text fed to the matcher one byte at a time.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace {

const grammar::Vocabulary& bytes() {
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

void run(const std::string& gbnf, std::string_view text) {
    const grammar::Grammar g = grammar::Grammar::parse(gbnf);
    (void)g.to_string();
    grammar::Matcher m(g, bytes());
    std::vector<char> allowed;
    size_t steps = 0;
    for (unsigned char c : text) {
        if (++steps > 64) break;  // each step may fan out; a few dozen reach every state kind
        m.allowed(allowed);
        if (!m.allows(c)) break;
        m.accept(c);
    }
    (void)m.complete();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const size_t nul = in.find('\0');
    const std::string source(in.substr(0, nul));
    const std::string_view text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
    try {
        run(source, text);
    } catch (const grammar::Error&) {
    }
    try {
        run(grammar::json_schema_to_gbnf(source), text);
    } catch (const grammar::Error&) {
    }
    return 0;
}
