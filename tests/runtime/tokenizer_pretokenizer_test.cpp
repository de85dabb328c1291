// The hand-written pre-tokenizer scanners against the regexes they replace. Every expected split was
// produced by Python's `regex` module (which implements \p{..} and \s as Unicode defines them) running
// the pattern llama.cpp uses for that pre-tokenizer, listed in pretokenizer.h.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"

namespace {

using runtime::tokenizer_detail::PreTokenizer;
using runtime::tokenizer_detail::WordSplitter;

struct SplitCase {
    PreTokenizer pre;
    std::string text;
    std::vector<std::string> words;
};

std::vector<std::string> split(PreTokenizer pre, const std::string& text) {
    WordSplitter splitter(pre);
    std::vector<uint32_t> ends;
    splitter.split(text, ends);
    std::vector<std::string> words;
    uint32_t begin = 0;
    for (const uint32_t end : ends) {
        words.push_back(text.substr(begin, end - begin));
        begin = end;
    }
    return words;
}

const SplitCase kCases[] = {
    {PreTokenizer::Gpt2, "Hello world", {"Hello", " world"}},
    {PreTokenizer::Gpt2, "I'm sure they'll", {"I", "'m", " sure", " they", "'ll"}},
    {PreTokenizer::Gpt2, "I'M", {"I", "'", "M"}},
    {PreTokenizer::Gpt2, "   leading spaces\tand\ttabs", {"  ", " leading", " spaces", "\t", "and", "\t", "tabs"}},
    {PreTokenizer::Gpt2, "x=1;y=2\r\nz = x**y", {"x", "=", "1", ";", "y", "=", "2", "\r", "\n", "z", " =", " x", "**", "y"}},
    {PreTokenizer::Gpt2, "123456 7", {"123456", " 7"}},
    {PreTokenizer::Gpt2, "h\u00E9llo w\u00F6rld \u4F60\u597D \U0001F642", {"h\u00E9llo", " w\u00F6rld", " \u4F60\u597D", " \U0001F642"}},
    {PreTokenizer::Gpt2, "end  ", {"end", "  "}},
    {PreTokenizer::Gpt2, "a\u00A0\u00A0b", {"a", "\u00A0", "\u00A0", "b"}},
    {PreTokenizer::Gpt2, "\u00B2\u2167x", {"\u00B2\u2167", "x"}},
    {PreTokenizer::Llama3, "I'M sure THEY'LL", {"I", "'M", " sure", " THEY", "'LL"}},
    {PreTokenizer::Llama3, "1234567 89", {"123", "456", "7", " ", "89"}},
    {PreTokenizer::Llama3, "\n\nfoo", {"\n\n", "foo"}},
    {PreTokenizer::Llama3, "  \n  x", {"  \n", " ", " x"}},
    {PreTokenizer::Llama3, "(foo) bar!!\n\nbaz", {"(foo", ")", " bar", "!!\n\n", "baz"}},
    {PreTokenizer::Llama3, "a\u3000\u3000b", {"a", "\u3000", "\u3000b"}},
    {PreTokenizer::Llama3, " 12", {" ", "12"}},
    {PreTokenizer::Llama3, "x\r\n  \r\n y", {"x", "\r\n  \r\n", " y"}},
    {PreTokenizer::Qwen2, "1234 ab12", {"1", "2", "3", "4", " ab", "1", "2"}},
    {PreTokenizer::Qwen2, "don'T", {"don", "'T"}},
    {PreTokenizer::Qwen2, "\tfoo\n bar", {"\tfoo", "\n", " bar"}},
    {PreTokenizer::Qwen2, "\u0661\u0662\u0663", {"\u0661", "\u0662", "\u0663"}},
    {PreTokenizer::Qwen2, "cafe\u0301 ok", {"cafe", "\u0301", " ok"}},
    {PreTokenizer::Qwen35, "cafe\u0301 ok", {"cafe\u0301", " ok"}},
    {PreTokenizer::Qwen35, "\u0915\u093F\u0924\u093E\u092C", {"\u0915\u093F\u0924\u093E\u092C"}},
    {PreTokenizer::Qwen35, " \u0301x", {" \u0301x"}},
    {PreTokenizer::Qwen35, "1\u0301!", {"1", "\u0301", "!"}},
    // o200k: letter runs split at case changes by the real Unicode cases, contractions after any run
    // (case-insensitive, long s included), slashes joining symbol runs
    {PreTokenizer::Gpt4o, "CamelCaseWords HTTPServer", {"Camel", "Case", "Words", " HTTPServer"}},
    {PreTokenizer::Gpt4o, "I'VE been 'told he's", {"I'VE", " been", " '", "told", " he's"}},
    {PreTokenizer::Gpt4o, "1234567 89", {"123", "456", "7", " ", "89"}},
    {PreTokenizer::Gpt4o, "path/to//file\n/x", {"path", "/to", "//", "file", "\n", "/x"}},
    {PreTokenizer::Gpt4o, "  \n  x", {"  \n", " ", " x"}},
    {PreTokenizer::Gpt4o, "\u0395\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC \u041F\u0420\u0418\u0412\u0415\u0422\u043C\u0438\u0440", {"\u0395\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC", " \u041F\u0420\u0418\u0412\u0415\u0422\u043C\u0438\u0440"}},
    {PreTokenizer::Gpt4o, "a\u02B0B", {"a\u02B0", "B"}},
    {PreTokenizer::Gpt4o, " \u0301x", {" \u0301x"}},
    {PreTokenizer::Gpt4o, "it'\u017F", {"it'\u017F"}},
    {PreTokenizer::Gpt4o, "\u4E2D\u6587abc", {"\u4E2D\u6587abc"}},
    {PreTokenizer::Gpt4o, "x\r\n  \r\n y", {"x", "\r\n  \r\n", " y"}},
};

TEST(TokenizerPretokenizer, MatchesTheRegexes) {
    for (const SplitCase& c : kCases) {
        EXPECT_EQ(split(c.pre, c.text), c.words) << "pre-tokenizer " << static_cast<int>(c.pre) << " on '" << c.text << "'";
    }
}

TEST(TokenizerPretokenizer, EmptyTextHasNoWords) {
    for (const PreTokenizer pre : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2, PreTokenizer::Qwen35,
                                    PreTokenizer::Gpt4o}) {
        EXPECT_TRUE(split(pre, "").empty());
    }
}

// Words always tile the text, whatever it holds: every byte value, lone continuation bytes,
// truncated sequences.
TEST(TokenizerPretokenizer, WordsCoverArbitraryBytes) {
    std::string text;
    for (int i = 0; i < 256; ++i) text += static_cast<char>(i);
    text += "\xE4\xBD";  // truncated 3-byte sequence at the end
    for (const PreTokenizer pre : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2, PreTokenizer::Qwen35,
                                    PreTokenizer::Gpt4o}) {
        std::string joined;
        for (const std::string& w : split(pre, text)) {
            EXPECT_FALSE(w.empty());
            joined += w;
        }
        EXPECT_EQ(joined, text);
    }
}

}  // namespace
