// Grammar-constrained generation on the tiny fixture models, through gguf-run: whatever the model
// prefers, the text it writes is accepted by the grammar (json.gbnf's output parses as JSON, a JSON
// schema's output has the schema's fields and types) and ends where the grammar is complete.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

#include "fixtures.h"
#include "ambiguous_grammar.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "run_command.h"

namespace {

using testing_support::fixture;
using testing_support::run_app;

const std::filesystem::path kGrammars = std::filesystem::path(GGUF_SOURCE_DIR) / "tests/grammar/grammars";

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Whether the grammar accepts `text` whole (checked byte by byte, independently of the model's tokens).
bool grammar_accepts(const std::string& gbnf, const std::string& text) {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
    const grammar::Vocabulary v(pieces, pieces, std::vector<bool>(256, false));
    const grammar::Grammar g = grammar::Grammar::parse(gbnf);
    grammar::Matcher m(g, v);
    for (unsigned char c : text) {
        if (!m.allows(c)) return false;
        m.accept(c);
    }
    return m.complete();
}

struct Generated {
    std::string text;
    int tokens = 0;
};

Generated generate(const std::string& model, const std::string& args) {
    const auto r = run_app("gguf-run", "-m '" + fixture(model).string() + "' -t 1 --json --log-disable " + args);
    EXPECT_EQ(r.status, 0) << args << "\n" << r.err;
    if (r.status != 0) return {};
    const auto j = nlohmann::json::parse(r.out);
    return {j["text"].get<std::string>(), j["generated_tokens"].get<int>()};
}

TEST(ConstrainedGeneration, JsonGrammarOutputParsesAsJson) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const std::string gbnf = read(kGrammars / "json.gbnf");
    int finished = 0;
    for (const char* model : {"gguf/tiny-dense-bf16.gguf", "gguf/tiny-moe-bf16.gguf"}) {
        for (const char* sampling : {"--temp 0", "--temp 0.8 -s 1", "--temp 1.2 -s 2 --top-k 0 --min-p 0", "--temp 0.7 -s 3 --mirostat 2"}) {
            const Generated g = generate(model, "-p 'config = ' -n 200 --grammar-file '" + (kGrammars / "json.gbnf").string() + "' " + sampling);
            if (g.tokens < 200) {  // ended by the model: the grammar was complete
                ++finished;
                EXPECT_TRUE(nlohmann::json::accept(g.text)) << model << " " << sampling << ": " << g.text;
            }
            // cut by -n or not: what was written is where the grammar allows it to be
            EXPECT_TRUE(g.tokens == 200 || grammar_accepts(gbnf, g.text)) << model << " " << sampling << ": " << g.text;
        }
    }
    EXPECT_GT(finished, 0);
}

TEST(ConstrainedGeneration, ACompleteGrammarEndsTheTextEvenWithIgnoreEos) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const Generated g = generate("gguf/tiny-dense-bf16.gguf", "-p x -n 50 --ignore-eos --grammar 'root ::= \"yes\" | \"no\"'");
    EXPECT_TRUE(g.text == "yes" || g.text == "no") << g.text;
    EXPECT_LT(g.tokens, 50);
}

TEST(ConstrainedGeneration, OtherGrammarsAreFollowed) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    for (const char* file : {"arithmetic.gbnf", "list.gbnf", "chess.gbnf", "c.gbnf", "unicode.gbnf"}) {
        const std::string gbnf = read(kGrammars / file);
        const Generated g = generate("gguf/tiny-dense-bf16.gguf", "-p 'x' -n 120 --temp 0.9 -s 5 --grammar-file '" +
                                                                   (kGrammars / file).string() + "'");
        if (g.tokens < 120) {
            EXPECT_TRUE(grammar_accepts(gbnf, g.text)) << file << ": " << g.text;
        }
        EXPECT_FALSE(g.text.empty()) << file;
        // the streamed text is valid UTF-8 (no U+FFFD from a character the grammar let through broken)
        EXPECT_EQ(g.text.find("\xEF\xBF\xBD"), std::string::npos) << file << ": " << g.text;
    }
}

// A grammar with more parse states at one position than the matcher keeps ends the run with one error
// line and exit 1.
TEST(ConstrainedGeneration, ATooAmbiguousGrammarIsAnError) {
    const std::filesystem::path file =
        std::filesystem::temp_directory_path() / ("ambiguous-" + std::to_string(::getpid()) + ".gbnf");
    std::ofstream(file) << too_ambiguous_grammar();
    const std::filesystem::path model = std::filesystem::path(GGUF_SOURCE_DIR) / "testdata/tiny-dense-q8_0.gguf";
    const auto r = run_app("gguf-run", "-m '" + model.string() + "' -t 1 --log-disable -p hi -n 4 --grammar-file '" +
                                           file.string() + "'");
    std::filesystem::remove(file);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("error: grammar: more than 100000 parse states at one position"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(ConstrainedGeneration, JsonSchemaOutputHasTheSchemasFields) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const std::string schema =
        R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "count": {"type": "integer"},
            "ok": {"type": "boolean"}}, "required": ["name", "count", "ok"]})";
    for (const char* sampling : {"--temp 0", "--temp 1.0 -s 7"}) {
        const Generated g = generate("gguf/tiny-moe-bf16.gguf", "-p 'data: ' -n 300 -j '" + schema + "' " + sampling);
        ASSERT_LT(g.tokens, 300) << g.text;
        const auto j = nlohmann::json::parse(g.text);
        EXPECT_TRUE(j["name"].is_string()) << g.text;
        EXPECT_LE(j["name"].get<std::string>().size(), 12u) << g.text;
        EXPECT_TRUE(j["count"].is_number_integer()) << g.text;
        EXPECT_TRUE(j["ok"].is_boolean()) << g.text;
    }
}

}  // namespace
