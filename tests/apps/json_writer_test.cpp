// appcommon::JsonWriter: the --json output of every app.
#include "appcommon/json_writer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <sstream>

namespace {

TEST(JsonWriter, NestedDocumentReadsBack) {
    std::ostringstream out;
    {
        appcommon::JsonWriter w(out);
        w.begin_object().field("name", "tiny \"model\"\n").field("n", int64_t{-3}).field("big", uint64_t{1} << 63);
        w.key("list").begin_array().value(true).null().value(0.1).end_array();
        w.key("empty").begin_object().end_object();
        w.end_object();
    }
    const auto j = nlohmann::json::parse(out.str());
    EXPECT_EQ(j["name"], "tiny \"model\"\n");
    EXPECT_EQ(j["n"], -3);
    EXPECT_EQ(j["big"].get<uint64_t>(), uint64_t{1} << 63);
    EXPECT_EQ(j["list"][0], true);
    EXPECT_TRUE(j["list"][1].is_null());
    EXPECT_EQ(j["list"][2].get<double>(), 0.1);
    EXPECT_TRUE(j["empty"].empty());
    EXPECT_EQ(out.str().back(), '\n');
}

TEST(JsonWriter, CompactLayout) {
    std::ostringstream out;
    appcommon::JsonWriter(out, false).begin_object().field("a", 1).key("b").begin_array().value(2).end_array().end_object();
    EXPECT_EQ(out.str(), "{\"a\":1,\"b\":[2]}\n");
}

TEST(JsonWriter, NumbersAreShortestAndNonFiniteIsNull) {
    std::ostringstream out;
    appcommon::JsonWriter(out, false)
        .begin_array()
        .value(0.1)
        .value(1e300)
        .value(std::nan(""))
        .value(std::numeric_limits<double>::infinity())
        .end_array();
    EXPECT_EQ(out.str(), "[0.1,1e+300,null,null]\n");
}

TEST(JsonWriter, EscapesControlsAndKeepsValidUtf8) {
    EXPECT_EQ(appcommon::JsonWriter::escape("a\\b\t\x01"), "\"a\\\\b\\t\\u0001\"");
    EXPECT_EQ(appcommon::JsonWriter::escape("\xC4\xA0the \xE4\xB8\xAD"), "\"\xC4\xA0the \xE4\xB8\xAD\"");
}

TEST(JsonWriter, BrokenUtf8BecomesReplacementCharacters) {
    // A lone continuation byte, a truncated sequence and an overlong encoding: each is replaced, the
    // rest kept, and the result is valid JSON.
    const std::string s = appcommon::JsonWriter::escape("a\x80" "b\xE4\xB8" "c\xC0\xAF");
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(s, "\"a" + fffd + "b" + fffd + "c" + fffd + fffd + "\"");
    EXPECT_EQ(nlohmann::json::parse(s).get<std::string>(), "a" + fffd + "b" + fffd + "c" + fffd + fffd);
}

}  // namespace
