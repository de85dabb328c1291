// GBNF: parsing (the test grammars, errors naming their position), matching text through a byte-level
// vocabulary, the allowed-token mask against token-by-token checks on a 150k-token vocabulary, token
// references, split UTF-8 characters, and JSON Schema conversion.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "ambiguous_grammar.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace {

using grammar::Grammar;
using grammar::Matcher;
using grammar::Vocabulary;

const std::filesystem::path kDir = std::filesystem::path(GGUF_SOURCE_DIR) / "tests/grammar/grammars";

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Tokens 0..255 are single bytes, 256 is the end of generation.
Vocabulary byte_vocab() {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
    pieces.push_back("");
    std::vector<bool> end(257, false);
    end[256] = true;
    return Vocabulary(pieces, pieces, end);
}

// Whether the grammar matches `text` exactly (fed one byte at a time).
bool accepts(const std::string& gbnf, const std::string& text) {
    const Grammar g = Grammar::parse(gbnf);
    const Vocabulary v = byte_vocab();
    Matcher m(g, v);
    for (unsigned char c : text) {
        if (!m.allows(c)) return false;
        m.accept(c);
    }
    return m.complete() && m.allows(256);
}

std::vector<std::string> sorted_lines(const std::string& s) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    return lines;
}

std::string parse_error(const std::string& gbnf) {
    try {
        Grammar::parse(gbnf);
    } catch (const grammar::Error& e) {
        return e.what();
    }
    return "(parsed)";
}

TEST(Gbnf, TestGrammarsParseAndRoundTrip) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(kDir)) {
        const Grammar g = Grammar::parse(read(e.path()));
        // the generated rules written back parse to the same rules (in another order: rules are numbered as
        // they are first used)
        EXPECT_EQ(sorted_lines(Grammar::parse(g.to_string()).to_string()), sorted_lines(g.to_string())) << e.path();
        ++n;
    }
    EXPECT_GE(n, 6);
}

TEST(Gbnf, JsonGrammarAcceptsJsonOnly) {
    const std::string g = read(kDir / "json.gbnf");
    EXPECT_TRUE(accepts(g, R"({"a": [1, 2.5e3, -0.25, "x\u00e9\n"], "b": {"c": null}, "d": true})"));
    EXPECT_TRUE(accepts(g, "[]"));
    EXPECT_TRUE(accepts(g, "\"caf\xC3\xA9\""));  // UTF-8 inside strings
    EXPECT_FALSE(accepts(g, R"({"a" 1})"));
    EXPECT_FALSE(accepts(g, "[1,]"));
    EXPECT_FALSE(accepts(g, "01"));
    EXPECT_FALSE(accepts(g, "{\"a\": 1"));  // not complete
}

TEST(Gbnf, OtherGrammarsMatchTheirLanguages) {
    EXPECT_TRUE(accepts(read(kDir / "arithmetic.gbnf"), "1 + x*3 = (y - 2)/4\n"));
    EXPECT_FALSE(accepts(read(kDir / "arithmetic.gbnf"), "1 + = 2\n"));
    EXPECT_TRUE(accepts(read(kDir / "list.gbnf"), "- apples\n* pears\n"));
    EXPECT_FALSE(accepts(read(kDir / "list.gbnf"), "- a\n- b\n- c\n- d\n- e\n- f\n"));  // at most five
    EXPECT_TRUE(accepts(read(kDir / "chess.gbnf"), "1. e4 e5\n2. Nf3 Nc6\n3. Bb5 O-O\n"));
    EXPECT_FALSE(accepts(read(kDir / "chess.gbnf"), "1. e9 e5\n"));
    EXPECT_TRUE(accepts(read(kDir / "c.gbnf"), "int x = 3;\nint main(int argc) {\n  if (argc > 1) {\n  return f(argc, 2);\n}\n  return 0;\n}\n"));
    EXPECT_FALSE(accepts(read(kDir / "c.gbnf"), "int main() { return 0 }\n"));
    EXPECT_TRUE(accepts(read(kDir / "unicode.gbnf"), "\xE3\x81\x82\xE6\xBC\xA2\xE3\x80\x81\xF0\x9F\x98\x80"));  // あ漢、😀
    EXPECT_FALSE(accepts(read(kDir / "unicode.gbnf"), "a"));
}

TEST(Gbnf, RepetitionBounds) {
    const std::string g = "root ::= \"ab\"{2,3} [0-9]{0,2}";
    EXPECT_FALSE(accepts(g, "ab"));
    EXPECT_TRUE(accepts(g, "abab"));
    EXPECT_TRUE(accepts(g, "ababab12"));
    EXPECT_FALSE(accepts(g, "abababab"));
    EXPECT_FALSE(accepts(g, "abab123"));
    EXPECT_TRUE(accepts("root ::= [a]{3}", "aaa"));
    EXPECT_FALSE(accepts("root ::= [a]{3}", "aa"));
    EXPECT_TRUE(accepts("root ::= \"x\"{2,} \"y\"?", "xxxxxy"));
    EXPECT_TRUE(accepts("root ::= ( \"a\" | \"b\" )+ \"!\"", "abba!"));
    EXPECT_TRUE(accepts("root ::= [^a-c] .", "dz"));
    EXPECT_FALSE(accepts("root ::= [^a-c] .", "bz"));
}

TEST(Gbnf, MalformedGrammarsNameThePosition) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"root ::= \"a", "line 1, column 12: unterminated string literal"},
        {"root \"a\"", "line 1, column 6: expected '::=' after the rule name 'root'"},
        {"root ::= item\n", "line 1, column 10: rule 'item' is used but never defined"},
        {"item ::= \"a\"\n", "no 'root' rule"},
        {"root ::= ( \"a\" \n", "expected ')'"},
        {"root ::= [a-", "unterminated character class"},
        {"root ::= \"\\q\"", "line 1, column 11: unknown escape '\\q'"},
        {"root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice"},
        {"root ::= * \"a\"", "line 1, column 10: '*' follows nothing to repeat"},
        {"root ::= \"a\"{3,1}", "repetition maximum below its minimum"},
        {"root ::= \"a\" )", "line 1, column 14: unexpected ')'"},
        {"root ::= [z-a]", "character range's end before its start"},
        {"root ::= \"\\x4\"", "expected 2 hexadecimal digits"},
        {"root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", "rule 'expr' is left-recursive"},
        {"root ::= a\na ::= \"x\"* b\nb ::= a \"y\" | \"z\"", "left-recursive"},
        {"root ::= <[12", "expected ']>' after the token id"},
    };
    for (const auto& [src, want] : cases) {
        const std::string err = parse_error(src);
        EXPECT_NE(err.find(want), std::string::npos) << src << "\n  got: " << err;
        EXPECT_EQ(err.find('\n'), std::string::npos) << err;  // one line
        EXPECT_EQ(err.rfind("grammar: ", 0), 0u) << err;
    }
}

// Grammars are user input: sizes that would exhaust the stack or memory are errors.
TEST(Gbnf, HostileSizesAreErrors) {
    EXPECT_NE(parse_error("root ::= " + std::string(1000, '(') + "\"a\"" + std::string(1000, ')')).find("nest deeper"),
              std::string::npos);
    EXPECT_NE(parse_error("root ::= \"" + std::string(50, 'a') + "\"{100000}").find("expands to more than"), std::string::npos);
    // a chain of 100k rules: parses (no recursion in the checks), and matching refuses it cleanly
    std::string chain = "root ::= r0\n";
    for (int i = 0; i < 100000; ++i) chain += "r" + std::to_string(i) + " ::= r" + std::to_string(i + 1) + "\n";
    chain += "r100000 ::= \"x\"\n";
    const Grammar g = Grammar::parse(chain);
    const Vocabulary v = byte_vocab();
    EXPECT_THROW(Matcher(g, v), grammar::Error);
    // a long left-recursive cycle is found without recursion
    std::string cycle = "root ::= c0\n";
    for (int i = 0; i < 50000; ++i) cycle += "c" + std::to_string(i) + " ::= c" + std::to_string((i + 1) % 50000) + " \"x\" | \"y\"\n";
    EXPECT_NE(parse_error(cycle).find("left-recursive"), std::string::npos);
}

// Grammars that match the same text many ways: a state reached by many paths is expanded once, and more
// distinct states at one position than the matcher keeps are an error, not exhausted memory.
TEST(GbnfMatcher, AmbiguousGrammarsStayBounded) {
    // 40 empty alternatives under a repetition of up to 12: 41^12 paths to the same few states (this ran out
    // of memory before expansions were shared; found by grammar-fuzz)
    std::string empties;
    for (int i = 0; i < 40; ++i) empties += " |";
    const std::string g = "root ::= ( \"a\"" + empties + " ){1,12} \"b\"";
    EXPECT_TRUE(accepts(g, "aab"));
    EXPECT_TRUE(accepts(g, "b"));
    EXPECT_FALSE(accepts(g, "ac"));
    // 10^6 distinct states at the first character
    const Grammar wide = Grammar::parse(too_ambiguous_grammar());
    const Vocabulary v = byte_vocab();
    try {
        Matcher m(wide, v);
        FAIL() << "expected grammar::Error";
    } catch (const grammar::Error& e) {
        EXPECT_NE(std::string(e.what()).find("too ambiguous"), std::string::npos) << e.what();
    }
}

TEST(Gbnf, NewlinesContinueAfterBarsAndInsideParentheses) {
    const std::string g = "root ::=\n  \"a\" (\n  \"b\" |\n  \"c\"\n  ) |\n  \"d\"  # comment\n\n# more\n";
    EXPECT_TRUE(accepts(g, "ab"));
    EXPECT_TRUE(accepts(g, "ac"));
    EXPECT_TRUE(accepts(g, "d"));
    EXPECT_FALSE(accepts(g, "a"));
}

TEST(GbnfMatcher, EndOfGenerationOnlyWhereComplete) {
    const Grammar g = Grammar::parse("root ::= \"ab\" \"c\"?");
    const Vocabulary v = byte_vocab();
    Matcher m(g, v);
    EXPECT_FALSE(m.allows(256));
    m.accept('a');
    m.accept('b');
    EXPECT_TRUE(m.complete());
    EXPECT_TRUE(m.allows(256));
    EXPECT_TRUE(m.allows('c'));
    EXPECT_FALSE(m.allows('d'));
    EXPECT_THROW(m.accept('d'), grammar::Error);
    m.reset();
    EXPECT_FALSE(m.complete());
    EXPECT_TRUE(m.allows('a'));
}

TEST(GbnfMatcher, CharactersSplitAcrossTokens) {
    // 0: first byte of é, 1: its second byte, 2: é whole, 3: "e", 4: "\xC3" + "x" (broken), 5: end
    const std::vector<std::string> pieces{"\xC3", "\xA9", "\xC3\xA9", "e", "\xC3x", ""};
    const Vocabulary v(pieces, pieces, {false, false, false, false, false, true});
    const Grammar g = Grammar::parse("root ::= [\\u00E0-\\u00EF] \"e\"");
    Matcher m(g, v);
    std::vector<char> allowed;
    m.allowed(allowed);
    EXPECT_EQ(allowed, (std::vector<char>{1, 0, 1, 0, 0, 0}));
    m.accept(0);
    m.allowed(allowed);
    EXPECT_EQ(allowed, (std::vector<char>{0, 1, 0, 0, 0, 0}));
    m.accept(1);
    EXPECT_TRUE(m.allows(3));
    m.accept(3);
    EXPECT_TRUE(m.allows(5));
    // overlong forms and surrogates are no characters, whole or cut: "\xF0\x84" could only start an
    // overlong U+4xxx, "\xE0\x80\x80" is an overlong NUL, "\xED\xA0" starts a surrogate
    const std::vector<std::string> bad{"\xF0\x84", "\xE0\x80\x80", "\xED\xA0", "\xE6\xBC\xA2", ""};
    const Vocabulary bv(bad, bad, {false, false, false, false, true});
    const Grammar not_a = Grammar::parse("root ::= [^a]+");
    Matcher any(not_a, bv);
    EXPECT_EQ((std::vector<bool>{any.allows(0), any.allows(1), any.allows(2), any.allows(3)}),
              (std::vector<bool>{false, false, false, true}));
    // a first byte whose characters all lie outside the class is refused at once
    const Grammar ascii = Grammar::parse("root ::= [a-z]+");
    Matcher a(ascii, v);
    EXPECT_FALSE(a.allows(0));
}

TEST(GbnfMatcher, TokenReferences) {
    const std::vector<std::string> pieces{"a", "b", "", "<think>", ""};
    const std::vector<std::string> texts{"a", "b", "<think>", "x", "</s>"};
    const Vocabulary v(pieces, texts, {false, false, false, false, true});
    const Grammar g = Grammar::parse("root ::= <think> !<[1]>* <[1]>");
    Matcher m(g, v);
    std::vector<char> allowed;
    m.allowed(allowed);
    EXPECT_EQ(allowed, (std::vector<char>{0, 0, 1, 0, 0}));  // by text, not by the piece "<think>" of token 3
    m.accept(2);
    m.allowed(allowed);
    EXPECT_EQ(allowed, (std::vector<char>{1, 1, 1, 1, 0}));  // anything but 1 (repeated), or 1 to finish
    m.accept(0);
    m.accept(1);
    EXPECT_TRUE(m.complete());
    const Grammar unknown_text = Grammar::parse("root ::= <nope>"), unknown_id = Grammar::parse("root ::= <[99]>");
    EXPECT_THROW(Matcher(unknown_text, v), grammar::Error);
    EXPECT_THROW(Matcher(unknown_id, v), grammar::Error);
}

// The mask from the prefix walk equals token-by-token checks on a vocabulary the size of Qwen3's
// (151k pieces: ASCII words, punctuation, multi-byte characters and cut characters).
TEST(GbnfMatcher, MaskMatchesPerTokenChecksOnALargeVocabulary) {
    std::mt19937 rng(5);
    const std::vector<std::string> atoms{" ", "\"", "{", "}", "[", "]", ",", ":", "\\", "\n", "0", "1", "9", ".", "-",
                                         "e", "a", "true", "null", "\xC3\xA9", "\xE6\xBC\xA2", "\xC3", "\xA9", "\xF0\x9F"};
    std::vector<std::string> pieces;
    for (int i = 0; i < 151000; ++i) {
        std::string s;
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
        pieces.push_back(s);
    }
    pieces.push_back("");
    std::vector<bool> end(pieces.size(), false);
    end.back() = true;
    const Vocabulary v(pieces, pieces, end);
    const Grammar g = Grammar::parse(read(kDir / "json.gbnf"));
    Matcher m(g, v);
    std::vector<char> allowed;
    double worst_ms = 0;
    // walk a JSON text token by token through states of every kind: structure, strings, numbers
    const std::vector<std::string> path{"{", "\"", "a", "\xC3", "\xA9", "\"", ":", " ", "[", "1", ".", "9", ",", "true", "]", "}"};
    for (const auto& step : path) {
        const auto t0 = std::chrono::steady_clock::now();
        m.allowed(allowed);
        worst_ms = std::max(worst_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        size_t n_allowed = 0;
        for (size_t id = 0; id < pieces.size(); ++id) {
            ASSERT_EQ(allowed[id] != 0, m.allows(static_cast<int32_t>(id))) << "token " << id << " '" << pieces[id] << "' after " << step;
            n_allowed += allowed[id] != 0;
        }
        const auto it = std::find(pieces.begin(), pieces.end(), step);
        int32_t id = static_cast<int32_t>(it - pieces.begin());
        if (it == pieces.end()) {  // the step is not among the random pieces: add nothing, match a piece that starts it
            id = -1;
            for (size_t k = 0; k < pieces.size() && id < 0; ++k) {
                if (allowed[k] && pieces[k] == step) id = static_cast<int32_t>(k);
            }
        }
        ASSERT_GE(id, 0) << step;
        ASSERT_TRUE(m.allows(id)) << step;
        m.accept(id);
        EXPECT_GT(n_allowed, 0u);
    }
    EXPECT_TRUE(m.complete());
    std::printf("largest mask time over %zu tokens: %.1f ms\n", pieces.size(), worst_ms);
    EXPECT_LT(worst_ms, 3000.0);
}

// Each schema's grammar accepts the valid instances and rejects the invalid ones.
struct SchemaCase {
    const char* schema;
    std::vector<const char*> valid, invalid;
};

TEST(JsonSchema, ConvertedGrammarsFollowTheSchema) {
    const std::vector<SchemaCase> cases = {
        {R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
             "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]})",
         {R"({"name": "Ann"})", R"({"name": "Ann", "age": 31})", R"({"name":"B","age":-2,"tags":["x","y"]})",
          R"({"name": "C", "tags": []})"},
         {R"({"age": 3})", R"({"name": 3})", R"({"name": "A", "age": 1.5})", R"({"name": "A", "other": 1})",
          R"({"age": 1, "name": "A"})"}},
        {R"({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}}})",
         {"{}", R"({"a": true})", R"({"b": null})", R"({"a": false, "b": null})"},
         {R"({"a": 1})", R"({,"b": null})"}},
        {R"({"enum": ["red", "green", 3, null]})", {R"("red")", "3", "null"}, {R"("blue")", "4"}},
        {R"({"const": {"k": [1, 2]}})", {R"({"k":[1,2]})"}, {R"({"k":[1,3]})"}},
        {R"({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3})",
         {"[1, 2]", "[1.5, -2e3, 0]"}, {"[1]", "[1, 2, 3, 4]", "[\"a\", 1]"}},
        {R"({"type": ["string", "null"], "maxLength": 3})", {R"("abc")", "null", R"("")"}, {R"("abcd")", "1"}},
        {R"({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#"}}]})",
         {"1", "[1, [2, [3]]]", "[]"}, {R"("x")", "[1, \"x\"]"}},
        {R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
             "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["v", "next"]}},
             "$ref": "#/$defs/node"})",
         {R"({"v": 1, "next": {"v": 2, "next": null}})"}, {R"({"v": 1})"}},
        {R"({"type": "object", "additionalProperties": {"type": "integer"}})",
         {R"({"x": 1, "y": 2})", "{}"}, {R"({"x": "s"})"}},
        {"{}", {"1", R"({"any": ["thing"]})"}, {"nope"}},
        {R"({"type": "object", "properties": {"p": {"type": "string", "minLength": 2}}, "required": ["p"],
             "title": "t", "description": "annotations are ignored"})",
         {R"({"p": "ab"})"}, {R"({"p": "a"})"}},
    };
    for (const auto& c : cases) {
        const std::string gbnf = grammar::json_schema_to_gbnf(c.schema);
        for (const char* v : c.valid) EXPECT_TRUE(accepts(gbnf, v)) << c.schema << "\nshould accept " << v << "\n" << gbnf;
        for (const char* v : c.invalid) EXPECT_FALSE(accepts(gbnf, v)) << c.schema << "\nshould reject " << v << "\n" << gbnf;
    }
}

TEST(JsonSchema, UnsupportedOrBadSchemasAreErrors) {
    const std::vector<std::pair<const char*, const char*>> cases = {
        {R"({"type": "string", "pattern": "^a$"})", "at /: 'pattern' is not supported"},
        {R"({"properties": {"x": {"type": "integer", "minimum": 0}}})", "at /properties/x/: 'minimum' is not supported"},
        {R"({"allOf": [{}]})", "'allOf' is not supported"},
        {R"({"type": "thing"})", "unknown type 'thing'"},
        {R"({"$ref": "#/definitions/missing"})", "points nowhere"},
        {R"({"$ref": "https://example.com/s.json"})", "only references into this document"},
        {R"({"type": "object", "required": ["a"]})", "required property 'a' has no schema"},
        {R"({"type": )", "not valid JSON"},
        {"false", "accepts nothing"},
        {"1E888888888888888888", "not valid JSON"},  // found by grammar-fuzz: nlohmann's number overflow
        {R"({"$ref": 3})", "'$ref' must be a string"},
        {R"({"type": [1]})", "'type' must be a string or an array of strings"},
        {R"({"properties": {"a": {}}, "required": "a"})", "'required' must be an array"},
        {R"({"properties": []})", "'properties' must be an object"},
        {R"({"type": "array", "minItems": "2"})", "'minItems' must be a non-negative integer"},
    };
    std::string deep;
    for (int i = 0; i < 1000; ++i) deep += R"({"items": )";
    deep += "{}" + std::string(1000, '}');
    EXPECT_THROW(grammar::json_schema_to_gbnf(deep), grammar::Error);
    for (const auto& [schema, want] : cases) {
        try {
            grammar::json_schema_to_gbnf(schema);
            ADD_FAILURE() << schema << " converted";
        } catch (const grammar::Error& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << schema << "\n  got: " << e.what();
        }
    }
}

// llama.cpp's own example grammars, when a checkout is named by GGUF_LLAMA_CPP_GRAMMARS (they are not
// part of this repository).
TEST(Gbnf, LlamaCppExampleGrammarsParse) {
    const char* dir = std::getenv("GGUF_LLAMA_CPP_GRAMMARS");
    if (!dir || !std::filesystem::is_directory(dir)) GTEST_SKIP() << "GGUF_LLAMA_CPP_GRAMMARS not set";
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".gbnf") continue;
        EXPECT_NO_THROW(Grammar::parse(read(e.path()))) << e.path();
        ++n;
    }
    EXPECT_GT(n, 0);
}

}  // namespace
