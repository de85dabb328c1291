#include "convert/json.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

using convert::Error;
namespace json = convert::json;

namespace {

// The message of the convert::Error that parsing `text` throws ("" when it parses).
std::string parse_error(std::string_view text) {
    try {
        json::parse(text, "t.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Json, Scalars) {
    EXPECT_TRUE(json::parse("null").is_null());
    EXPECT_TRUE(json::parse(" true ").as_bool());
    EXPECT_FALSE(json::parse("false").as_bool());
    EXPECT_EQ(json::parse("\"hi\"").as_string(), "hi");
    EXPECT_DOUBLE_EQ(json::parse("-1.5e2").as_double(), -150.0);
    EXPECT_EQ(json::parse("0").as_int(), 0);
}

TEST(Json, IntegersAreExactBeyondDoublePrecision) {
    json::Value v = json::parse("[9007199254740993, -9223372036854775808, 9223372036854775807]");
    EXPECT_EQ(v.at(0).as_int(), 9007199254740993LL);
    EXPECT_EQ(v.at(1).as_int(), INT64_MIN);
    EXPECT_EQ(v.at(2).as_int(), INT64_MAX);
}

TEST(Json, IntegralDoublesConvertNonIntegralDoNot) {
    EXPECT_EQ(json::parse("1e3").as_int(), 1000);
    EXPECT_EQ(json::parse("1000000.0").as_int(), 1000000);
    EXPECT_TRUE(json::parse("2.0").is_integer());
    EXPECT_FALSE(json::parse("1.5").is_integer());
    EXPECT_THROW(json::parse("1.5").as_int(), Error);
    // Beyond int64: still a number, not an integer.
    json::Value big = json::parse("18446744073709551616");
    EXPECT_FALSE(big.is_integer());
    EXPECT_DOUBLE_EQ(big.as_double(), 18446744073709551616.0);
}

TEST(Json, UnderflowIsZeroOverflowIsAnError) {
    EXPECT_EQ(json::parse("1e-400").as_double(), 0.0);
    EXPECT_EQ(json::parse("0.000001e-400").as_double(), 0.0);
    EXPECT_NE(parse_error("1e400").find("out of range"), std::string::npos);
    EXPECT_NE(parse_error("-1e309").find("out of range"), std::string::npos);
}

TEST(Json, ObjectsKeepKeyOrderAndFindByKey) {
    json::Value v = json::parse(R"({"z": 1, "a": {"x": [1, 2, 3]}, "m": "s"})");
    ASSERT_TRUE(v.is_object());
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v.entries()[0].key, "z");
    EXPECT_EQ(v.entries()[1].key, "a");
    EXPECT_EQ(v.entries()[2].key, "m");
    EXPECT_EQ(v["a"]["x"].at(2).as_int(), 3);
    EXPECT_EQ(v["m"].as_string(), "s");
    EXPECT_EQ(v.find("nope"), nullptr);
    EXPECT_TRUE(v.contains("z"));
    try {
        (void)v["nope"];
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("\"nope\""), std::string::npos);
    }
}

TEST(Json, LargeObjectLookup) {
    std::string text = "{";
    for (int i = 0; i < 5000; ++i) {
        if (i) text += ',';
        text += "\"k" + std::to_string(i) + "\":" + std::to_string(i);
    }
    text += "}";
    json::Value v = json::parse(text);
    for (int i = 0; i < 5000; i += 97) EXPECT_EQ(v["k" + std::to_string(i)].as_int(), i);
    EXPECT_EQ(v.entries()[4999].key, "k4999");
}

TEST(Json, EmptyContainers) {
    EXPECT_EQ(json::parse("{}").size(), 0u);
    EXPECT_EQ(json::parse("[ ]").size(), 0u);
    EXPECT_EQ(json::parse("[[]]").at(0).size(), 0u);
}

TEST(Json, Escapes) {
    EXPECT_EQ(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
    EXPECT_EQ(json::parse(R"("\u0041\u00e9\u4e2d")").as_string(), "A\xC3\xA9\xE4\xB8\xAD");
    EXPECT_EQ(json::parse(R"("\u0000")").as_string(), std::string(1, '\0'));
    // U+1F600 as a surrogate pair, and raw UTF-8 passed through.
    EXPECT_EQ(json::parse(R"("\uD83D\uDE00")").as_string(), "\xF0\x9F\x98\x80");
    EXPECT_EQ(json::parse("\"\xC4\xA0the\"").as_string(), "\xC4\xA0the");
}

// nlohmann-json does the lexing: its wording, our "SOURCE:LINE:COLUMN: " prefix.
TEST(Json, RejectsBadStrings) {
    EXPECT_EQ(parse_error(R"("\uD83D")"),
              "t.json:1:8: syntax error while parsing value - invalid string: surrogate U+D800..U+DBFF must be "
              "followed by U+DC00..U+DFFF");
    EXPECT_NE(parse_error(R"("\uD83Dx")").find("must be followed by U+DC00"), std::string::npos);
    EXPECT_NE(parse_error(R"("\uDE00")").find("must follow U+D800"), std::string::npos);
    EXPECT_NE(parse_error(R"("\u12G4")").find("4 hex digits"), std::string::npos);
    EXPECT_NE(parse_error(R"("\x")").find("forbidden character after backslash"), std::string::npos);
    EXPECT_NE(parse_error("\"a\nb\"").find("control character"), std::string::npos);
    EXPECT_NE(parse_error("\"abc").find("missing closing quote"), std::string::npos);
    // Broken UTF-8 is refused, and the message does not repeat the broken bytes.
    for (const char* bad : {"\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xE4\xB8\""}) {  // overlong, surrogate, truncated
        const std::string e = parse_error(bad);
        EXPECT_NE(e.find("ill-formed UTF-8"), std::string::npos) << e;
        for (unsigned char c : e) EXPECT_LT(c, 0x80) << e;
    }
}

TEST(Json, RejectsMalformedDocuments) {
    EXPECT_EQ(parse_error(""), "t.json:1:1: syntax error while parsing value - unexpected end of input; expected '[', "
                               "'{', or a literal");
    EXPECT_NE(parse_error("[1,]").find("unexpected ']'"), std::string::npos);
    EXPECT_NE(parse_error("{\"a\":1,}").find("expected string literal"), std::string::npos);
    EXPECT_NE(parse_error("{\"a\" 1}").find("expected ':'"), std::string::npos);
    EXPECT_NE(parse_error("[1 2]").find("expected ']'"), std::string::npos);
    EXPECT_NE(parse_error("{\"a\":1").find("unexpected end of input; expected '}'"), std::string::npos);
    EXPECT_NE(parse_error("1 2").find("expected end of input"), std::string::npos);
    EXPECT_NE(parse_error("tru").find("invalid literal"), std::string::npos);
    EXPECT_NE(parse_error("01").find("expected end of input"), std::string::npos);
    EXPECT_NE(parse_error("1.").find("after '.'"), std::string::npos);
    EXPECT_NE(parse_error("1e").find("after exponent"), std::string::npos);
    EXPECT_NE(parse_error("-").find("invalid number"), std::string::npos);
    EXPECT_NE(parse_error("+1").find("invalid literal"), std::string::npos);
    EXPECT_NE(parse_error("NaN").find("invalid literal"), std::string::npos);
    EXPECT_EQ(parse_error("{\"a\":1,\"a\":2}"), "t.json: duplicate key \"a\"");
}

TEST(Json, ErrorsCarrySourceLineAndColumn) {
    EXPECT_EQ(parse_error("{\n  \"a\": [1,\n    x]\n}"),
              "t.json:3:5: syntax error while parsing value - invalid literal");
}

TEST(Json, DepthIsLimited) {
    std::string ok(json::kMaxDepth, '['), deep(json::kMaxDepth + 1, '[');
    ok += std::string(json::kMaxDepth, ']');
    deep += std::string(json::kMaxDepth + 1, ']');
    EXPECT_NO_THROW(json::parse(ok));
    EXPECT_NE(parse_error(deep).find("nesting deeper"), std::string::npos);
    // Far deeper than the limit must fail cleanly, not overflow the stack.
    EXPECT_NE(parse_error(std::string(1'000'000, '[')).find("nesting deeper"), std::string::npos);
}

TEST(Json, WrongTypeAccessThrows) {
    json::Value v = json::parse(R"({"a": "s", "b": [1]})");
    EXPECT_THROW(v["a"].as_int(), Error);
    EXPECT_THROW(v["a"]["x"], Error);
    EXPECT_THROW(v["b"].at(1), Error);
    EXPECT_THROW(v.at(0), Error);
    EXPECT_THROW(v["a"].size(), Error);
}

TEST(Json, ParseFileNamesThePath) {
    const auto path = std::filesystem::temp_directory_path() / ("json-test-" + std::to_string(::getpid()) + ".json");
    {
        std::ofstream(path) << "{\"k\": [true, null]}";
    }
    json::Value v = json::parse_file(path.string());
    EXPECT_TRUE(v["k"].at(1).is_null());
    {
        std::ofstream(path) << "{\"k\": }";
    }
    try {
        json::parse_file(path.string());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  path.string() + ":1:7: syntax error while parsing value - unexpected '}'; expected '[', '{', or a literal");
    }
    std::filesystem::remove(path);
    EXPECT_THROW(json::parse_file(path.string()), Error);
}
