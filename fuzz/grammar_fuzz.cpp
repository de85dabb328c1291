// libFuzzer target for libgrammar (grammar_exercise.h): GBNF and JSON schemas from any input must
// convert and match, or be rejected with grammar::Error.
#include <cstddef>
#include <cstdint>

#include "grammar_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    grammar_fuzz::exercise(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
