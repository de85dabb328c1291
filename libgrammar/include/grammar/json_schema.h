// JSON Schema -> GBNF, for --json-schema: output that follows the grammar is JSON that the schema
// accepts (for the keywords supported; docs/run.md#grammars lists them). Whitespace between tokens is
// limited as in llama.cpp (a space, or one or two newlines and up to 20 spaces or tabs of indentation).
#pragma once

#include <string>
#include <string_view>

namespace grammar {

// Throws grammar::Error ("json-schema: at /properties/x: ...") for invalid JSON or an unsupported
// keyword (pattern, allOf, numeric bounds, ...), rather than ignoring a constraint silently.
std::string json_schema_to_gbnf(std::string_view schema_json);

}  // namespace grammar
