// Grammar::to_string: the parsed rules written back as GBNF.
#include <cstdio>

#include "grammar/grammar.h"

namespace grammar {

namespace {

std::string char_text(uint32_t cp) {
    if (cp == '"' || cp == '\\' || cp == ']' || cp == '[' || cp == '-' || cp == '^' || cp < 0x20 || cp > 0x7E) {
        char buf[16];
        std::snprintf(buf, sizeof buf, cp <= 0xFF ? "\\x%02X" : cp <= 0xFFFF ? "\\u%04X" : "\\U%08X", cp);
        return buf;
    }
    return std::string(1, static_cast<char>(cp));
}

}  // namespace

std::string Grammar::to_string() const {
    std::string out;
    for (const Rule& r : rules_) {
        out += r.name + " ::=";
        for (size_t a = 0; a < r.alternatives.size(); ++a) {
            if (a) out += " |";
            // an empty alternative is written "" (a bare "|" at the end of a line would continue the rule)
            if (r.alternatives[a].size() == 1) out += " \"\"";
            for (const Element& e : r.alternatives[a]) {
                switch (e.kind) {
                    case ElementKind::End: break;
                    case ElementKind::RuleRef: out += " " + rules_[e.rule].name; break;
                    case ElementKind::Token:
                        out += std::string(" ") + (e.negated ? "!" : "") +
                               (e.token_text.empty() ? "<[" + std::to_string(e.token) + "]>" : e.token_text);
                        break;
                    case ElementKind::Chars:
                        out += e.negated ? " [^" : " [";
                        for (const CharRange& cr : e.ranges) {
                            out += char_text(cr.lo);
                            if (cr.hi != cr.lo) out += "-" + char_text(cr.hi);
                        }
                        out += "]";
                        break;
                }
            }
        }
        out += "\n";
    }
    return out;
}

}  // namespace grammar
