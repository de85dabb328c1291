// The --json writer escapes what JSON forbids raw: control bytes, and bytes that are not UTF-8
// (a tensor name from a hostile file), which become U+FFFD so that the output stays valid JSON.
#include <gtest/gtest.h>

#include "appcommon/json_writer.h"

namespace {

using appcommon::JsonWriter;

TEST(JsonWriter, EscapesInvalidUtf8) {
    EXPECT_EQ(JsonWriter::escape("plain"), "\"plain\"");
    EXPECT_EQ(JsonWriter::escape("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
    // valid multi-byte sequences pass through
    EXPECT_EQ(JsonWriter::escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    // stray bytes, truncated sequences, overlong forms, surrogates and code points past U+10FFFF
    EXPECT_EQ(JsonWriter::escape("w\xff\xfe"), "\"w\\ufffd\\ufffd\"");
    EXPECT_EQ(JsonWriter::escape("\xe2\x82"), "\"\\ufffd\\ufffd\"");
    EXPECT_EQ(JsonWriter::escape("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    EXPECT_EQ(JsonWriter::escape("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
    EXPECT_EQ(JsonWriter::escape("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    EXPECT_EQ(JsonWriter::escape("\x80x"), "\"\\ufffdx\"");
}

}  // namespace
