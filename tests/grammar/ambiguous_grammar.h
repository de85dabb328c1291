// A grammar with 10^6 distinct parse states at its first character, more than the matcher keeps: six rules,
// each starting with the next and then one of ten digits (which digit follows, at each level, tells the
// states apart). Shared by the matcher's unit test and gguf-run's CLI test of the same error.
#pragma once

#include <string>

inline std::string too_ambiguous_grammar() {
    std::string gbnf = "root ::= r0\n";
    for (int i = 0; i < 6; ++i) {
        gbnf += "r" + std::to_string(i) + " ::= ";
        for (int d = 0; d < 10; ++d) gbnf += (d ? " | r" : "r") + std::to_string(i + 1) + " \"" + std::to_string(d) + "\"";
        gbnf += "\n";
    }
    return gbnf + "r6 ::= \"a\"\n";
}
