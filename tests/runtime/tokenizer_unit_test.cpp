// Tokenizers built from small hand-made vocabularies, where every expected id follows from the
// vocabulary written in the test and the rules llama.cpp applies (merge order, special tokens,
// space handling, byte fallback).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gguf/metadata.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

using runtime::StreamingDecoder;
using runtime::Tokenizer;
using runtime::TokenType;
using Ids = std::vector<int32_t>;

std::string utf8(uint32_t cp) {
    std::string s;
    runtime::unicode::append_utf8(s, cp);
    return s;
}

// GPT-2's byte-level alphabet, written out independently of the tokenizer's own table: printable
// Latin-1 bytes are themselves, the other 68 take U+0100, U+0101, ... in byte order.
std::string byte_char(int b) {
    const auto printable = [](int c) { return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE; };
    if (printable(b)) return utf8(static_cast<uint32_t>(b));
    int skipped = 0;
    for (int c = 0; c < b; ++c) skipped += printable(c) ? 0 : 1;
    return utf8(256 + static_cast<uint32_t>(skipped));
}

struct VocabBuilder {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<float> scores;

    int32_t add(const std::string& text, TokenType type = TokenType::Normal, float score = 0.0f) {
        tokens.push_back(text);
        types.push_back(static_cast<int32_t>(type));
        scores.push_back(score);
        return static_cast<int32_t>(tokens.size() - 1);
    }
    int32_t id(const std::string& text) const {
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (tokens[i] == text) return static_cast<int32_t>(i);
        }
        ADD_FAILURE() << "no token " << text;
        return -1;
    }

    // Byte-level BPE: the 256 byte characters, then whatever the test adds.
    void add_byte_level() {
        for (int b = 0; b < 256; ++b) add(byte_char(b));
    }
    // The ids of the byte tokens for each byte of `s`, i.e. `s` with no merges at all.
    Ids bytes(const std::string& s) const {
        Ids ids;
        for (const char c : s) ids.push_back(id(byte_char(static_cast<uint8_t>(c))));
        return ids;
    }

    gguf::Metadata bpe(const std::vector<std::string>& merges, const std::string& pre = "gpt-2") const {
        gguf::Metadata md;
        md.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
        md.set("tokenizer.ggml.pre", gguf::Value::string(pre));
        md.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
        md.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
        md.set("tokenizer.ggml.merges", gguf::Value::string_array(merges));
        return md;
    }

    gguf::Metadata spm() const {
        gguf::Metadata md;
        md.set("tokenizer.ggml.model", gguf::Value::string("llama"));
        md.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
        md.set("tokenizer.ggml.scores", gguf::Value::f32_array(scores));
        md.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
        return md;
    }
};

Ids concat(std::initializer_list<Ids> parts) {
    Ids out;
    for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// ---------------------------------------------------------------------------------------------
// Byte-level BPE

TEST(TokenizerBpe, MergesApplyInRankOrder) {
    VocabBuilder v;
    v.add_byte_level();
    v.add("ab");
    v.add("bc");
    // "b c" ranks first: b+c merge before a+b can, leaving a alone.
    auto tok = Tokenizer::from_metadata(v.bpe({"b c", "a b"}));
    EXPECT_EQ(tok->encode("abc", false, false), (Ids{v.id("a"), v.id("bc")}));
    tok = Tokenizer::from_metadata(v.bpe({"a b", "b c"}));
    EXPECT_EQ(tok->encode("abc", false, false), (Ids{v.id("ab"), v.id("c")}));
}

TEST(TokenizerBpe, EqualRanksMergeLeftmostFirst) {
    VocabBuilder v;
    v.add_byte_level();
    v.add("aa");
    const auto tok = Tokenizer::from_metadata(v.bpe({"a a"}));
    EXPECT_EQ(tok->encode("aaa", false, false), (Ids{v.id("aa"), v.id("a")}));
    EXPECT_EQ(tok->encode("aaaa", false, false), (Ids{v.id("aa"), v.id("aa")}));
}

TEST(TokenizerBpe, MergedPiecesMergeFurther) {
    VocabBuilder v;
    v.add_byte_level();
    v.add("ab");
    v.add("abc");
    const auto tok = Tokenizer::from_metadata(v.bpe({"a b", "ab c"}));
    EXPECT_EQ(tok->encode("abcab", false, false), (Ids{v.id("abc"), v.id("ab")}));
}

// llama.cpp follows merges by their text, so a merge through a piece the vocabulary lacks still
// leads to the token it builds; a final piece that is no token falls back to its bytes.
TEST(TokenizerBpe, MergesThroughPiecesMissingFromTheVocabulary) {
    VocabBuilder v;
    v.add_byte_level();
    v.add("abc");  // "ab" is not a token
    const auto tok = Tokenizer::from_metadata(v.bpe({"a b", "ab c"}));
    EXPECT_EQ(tok->encode("abc", false, false), (Ids{v.id("abc")}));
    EXPECT_EQ(tok->encode("ab", false, false), (Ids{v.id("a"), v.id("b")}));
}

TEST(TokenizerBpe, MergesNeverCrossWords) {
    VocabBuilder v;
    v.add_byte_level();
    const std::string space = byte_char(' ');  // 'Ġ'
    v.add(space + "h");
    v.add("h" + space);
    const auto tok = Tokenizer::from_metadata(v.bpe({"h " + space, space + " h"}));
    // Words "h" and " h": the higher-ranked "h Ġ" would span the boundary and must not apply.
    EXPECT_EQ(tok->encode("h h", false, false), (Ids{v.id("h"), v.id(space + "h")}));
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWordTokens) {
    VocabBuilder v;
    v.add_byte_level();
    v.add("ab");
    v.add("abc");  // reachable only as a whole word: no merge builds it
    // llama-bpe (llama3) looks the whole word up first; qwen2 always merges.
    auto tok = Tokenizer::from_metadata(v.bpe({"a b"}, "llama-bpe"));
    EXPECT_EQ(tok->encode("abc", false, false), (Ids{v.id("abc")}));
    tok = Tokenizer::from_metadata(v.bpe({"a b"}, "qwen2"));
    EXPECT_EQ(tok->encode("abc", false, false), (Ids{v.id("ab"), v.id("c")}));
}

TEST(TokenizerBpe, RoundTripsAnyValidText) {
    VocabBuilder v;
    v.add_byte_level();
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    for (const std::string s : {"", "x", "  two\n\n\tlines \r\n", "h\u00E9llo \u4F60\u597D \U0001F642", "\x01\x7F\u00AD",
                                "I'M don't 123456"}) {
        const Ids ids = tok->encode(s, false, false);
        EXPECT_EQ(ids, v.bytes(s)) << s;  // no merges: one byte token per byte
        EXPECT_EQ(tok->decode(ids), s);
    }
}

// llama.cpp reads malformed UTF-8 as U+FFFD, byte by byte, before the byte-level encoding.
TEST(TokenizerBpe, MalformedUtf8IsReadAsReplacementCharacters) {
    VocabBuilder v;
    v.add_byte_level();
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    EXPECT_EQ(tok->encode("a\xFF" "b", false, false), v.bytes("a\uFFFD" "b"));
    EXPECT_EQ(tok->encode("\xE4\xBD", false, false), v.bytes("\uFFFD\uFFFD"));
    EXPECT_EQ(tok->encode("\xC0\x80", false, false), v.bytes(std::string(1, '\0')));  // overlong NUL
}

TEST(TokenizerBpe, PiecesAreTheBytesTokensStandFor) {
    VocabBuilder v;
    v.add_byte_level();
    const int32_t space_hello = v.add(byte_char(' ') + "hello" + byte_char('\n'));
    const int32_t half_e_acute = v.id(byte_char(0xC3));
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    EXPECT_EQ(tok->token_to_piece(space_hello), " hello\n");
    EXPECT_EQ(tok->token_to_piece(half_e_acute), "\xC3");
    EXPECT_EQ(tok->token_text(space_hello), "\u0120hello\u010A");
    EXPECT_THROW(tok->token_to_piece(static_cast<int32_t>(v.tokens.size())), runtime::Error);
    EXPECT_THROW(tok->token_to_piece(-1), runtime::Error);
}

// ---------------------------------------------------------------------------------------------
// Special tokens

TEST(TokenizerSpecial, ControlTokensAreParsedOnlyWhenAsked) {
    VocabBuilder v;
    const int32_t im_start = v.add("<|im_start|>", TokenType::Control);
    v.add_byte_level();
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    EXPECT_EQ(tok->encode("<|im_start|>hi", false, true), concat({{im_start}, v.bytes("hi")}));
    EXPECT_EQ(tok->encode("<|im_start|>hi", false, false), v.bytes("<|im_start|>hi"));
}

TEST(TokenizerSpecial, UserDefinedTokensAreAlwaysParsed) {
    VocabBuilder v;
    v.add_byte_level();
    const int32_t think = v.add("<think>", TokenType::UserDefined);
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    EXPECT_EQ(tok->encode("a<think>b", false, false), concat({v.bytes("a"), {think}, v.bytes("b")}));
}

// llama.cpp cuts out the longest special tokens first, everywhere, before shorter ones: in "abcd"
// the three-character "bcd" wins over "ab" although "ab" starts earlier.
TEST(TokenizerSpecial, LongerSpecialTokensAreCutOutFirst) {
    VocabBuilder v;
    v.add_byte_level();
    const int32_t ab = v.add("ab", TokenType::Control);
    const int32_t bcd = v.add("bcd", TokenType::Control);
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    EXPECT_EQ(tok->encode("abcd", false, true), concat({v.bytes("a"), {bcd}}));
    EXPECT_EQ(tok->encode("ab-ab", false, true), concat({{ab}, v.bytes("-"), {ab}}));
}

TEST(TokenizerSpecial, BosAndEosFollowTheMetadata) {
    VocabBuilder v;
    const int32_t bos = v.add("<|begin|>", TokenType::Control);
    const int32_t eos = v.add("<|end_of_text|>", TokenType::Control);
    v.add_byte_level();
    gguf::Metadata md = v.bpe({});
    md.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(static_cast<uint32_t>(bos)));
    md.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(static_cast<uint32_t>(eos)));
    // gpt-2 adds nothing by default.
    auto tok = Tokenizer::from_metadata(md);
    EXPECT_FALSE(tok->add_bos());
    EXPECT_EQ(tok->encode("a", true, false), v.bytes("a"));
    EXPECT_EQ(tok->bos(), bos);
    EXPECT_EQ(tok->eos(), eos);
    md.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
    md.set("tokenizer.ggml.add_eos_token", gguf::Value::boolean(true));
    tok = Tokenizer::from_metadata(md);
    EXPECT_EQ(tok->encode("a", true, false), concat({{bos}, v.bytes("a"), {eos}}));
    EXPECT_EQ(tok->encode("a", false, false), v.bytes("a"));
    EXPECT_EQ(tok->encode("", true, false), (Ids{bos, eos}));

    // llama-bpe adds BOS unless the metadata says otherwise.
    md = v.bpe({}, "llama-bpe");
    md.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(static_cast<uint32_t>(bos)));
    EXPECT_EQ(Tokenizer::from_metadata(md)->encode("a", true, false), concat({{bos}, v.bytes("a")}));
    md.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false));
    EXPECT_EQ(Tokenizer::from_metadata(md)->encode("a", true, false), v.bytes("a"));
}

TEST(TokenizerSpecial, EndOfGenerationTokens) {
    VocabBuilder v;
    const int32_t eos = v.add("<|endoftext|>", TokenType::Control);
    const int32_t im_end = v.add("<|im_end|>");  // typed normal, as some conversions leave it
    v.add_byte_level();
    gguf::Metadata md = v.bpe({}, "qwen2");
    md.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(static_cast<uint32_t>(eos)));
    const auto tok = Tokenizer::from_metadata(md);
    EXPECT_TRUE(tok->is_eog(eos));
    EXPECT_TRUE(tok->is_eog(im_end));
    EXPECT_FALSE(tok->is_eog(v.id("a")));
    EXPECT_FALSE(tok->is_eog(-1));
    // Recognized by its text, it becomes the end-of-turn token and a control token.
    EXPECT_EQ(tok->eot(), im_end);
    EXPECT_EQ(tok->token_type(im_end), TokenType::Control);
    EXPECT_EQ(tok->encode("<|im_end|>", false, true), (Ids{im_end}));
}

TEST(TokenizerSpecial, DecodeRendersControlTokensOnRequest) {
    VocabBuilder v;
    const int32_t eos = v.add("<|endoftext|>", TokenType::Control);
    const int32_t tool = v.add("<tool>", TokenType::UserDefined);
    v.add_byte_level();
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    const Ids ids = concat({v.bytes("a"), {eos}, {tool}, v.bytes("b")});
    EXPECT_EQ(tok->decode(ids), "a<|endoftext|><tool>b");
    EXPECT_EQ(tok->decode(ids, false), "a<tool>b");
}

// ---------------------------------------------------------------------------------------------
// Metadata errors

TEST(TokenizerMetadata, RejectsWhatItCannotRun) {
    VocabBuilder v;
    v.add_byte_level();
    gguf::Metadata md = v.bpe({}, "falcon");
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);  // a pre-tokenizer we do not have
    md.erase("tokenizer.ggml.pre");
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);
    md = v.bpe({});
    md.set("tokenizer.ggml.model", gguf::Value::string("bert"));
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);
    md = v.bpe({});
    md.erase("tokenizer.ggml.merges");
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);
    md = v.bpe({});
    md.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "a"}));
    md.set("tokenizer.ggml.token_type", gguf::Value::i32_array({1, 1, 1}));
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);  // duplicate token
    md = v.bpe({});
    md.set("tokenizer.ggml.token_type", gguf::Value::i32_array({1, 1}));
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);  // too few types
    // BPE's default BOS is id 11, which this three-token vocabulary lacks.
    VocabBuilder small;
    small.add("a");
    small.add("b");
    small.add("c");
    md = small.bpe({});
    md.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);
    md = v.bpe({});
    md.set("tokenizer.ggml.tokens", gguf::Value::string("not an array"));
    EXPECT_THROW(Tokenizer::from_metadata(md), runtime::Error);
}

// ---------------------------------------------------------------------------------------------
// SentencePiece

// <unk>, <s>, </s>, the 256 byte tokens (ids 3..258, as in Llama's vocabulary), then pieces.
VocabBuilder spm_vocab() {
    VocabBuilder v;
    v.add("<unk>", TokenType::Unknown);
    v.add("<s>", TokenType::Control);
    v.add("</s>", TokenType::Control);
    for (int b = 0; b < 256; ++b) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", b);
        v.add(hex, TokenType::Byte);
    }
    return v;
}

const std::string kSp = "\u2581";  // SentencePiece's space marker

TEST(TokenizerSpm, MergesHighestScoreFirst) {
    VocabBuilder v = spm_vocab();
    v.add(kSp, TokenType::Normal, -10);
    v.add("a", TokenType::Normal, -1);
    v.add("b", TokenType::Normal, -1);
    const int32_t sp_a = v.add(kSp + "a", TokenType::Normal, -2);
    const int32_t ab = v.add("ab", TokenType::Normal, -3);
    // "ab" is read as "▁ab": ▁+a (score -2) beats a+b (-3), and "▁ab" is no token.
    auto tok = Tokenizer::from_metadata(v.spm());
    EXPECT_EQ(tok->encode("ab", false, false), (Ids{sp_a, v.id("b")}));
    v.scores[ab] = -1.5f;  // now a+b wins
    tok = Tokenizer::from_metadata(v.spm());
    EXPECT_EQ(tok->encode("ab", false, false), (Ids{v.id(kSp), ab}));
}

TEST(TokenizerSpm, EqualScoresMergeLeftmostFirst) {
    VocabBuilder v = spm_vocab();
    v.add(kSp, TokenType::Normal, -10);
    v.add("a", TokenType::Normal, -1);
    const int32_t aa = v.add("aa", TokenType::Normal, -2);
    const auto tok = Tokenizer::from_metadata(v.spm());
    EXPECT_EQ(tok->encode("aaa", false, false), (Ids{v.id(kSp), aa, v.id("a")}));
}

TEST(TokenizerSpm, UnknownCharactersFallBackToBytes) {
    VocabBuilder v = spm_vocab();
    v.add(kSp, TokenType::Normal, -10);
    const auto tok = Tokenizer::from_metadata(v.spm());
    // "é" is C3 A9; byte token <0xXX> has id 3 + XX.
    const Ids ids = tok->encode("\u00E9", false, false);
    EXPECT_EQ(ids, (Ids{v.id(kSp), 3 + 0xC3, 3 + 0xA9}));
    EXPECT_EQ(tok->decode(ids), "\u00E9");
    // Malformed input is kept byte for byte.
    EXPECT_EQ(tok->encode("\xFF", false, false), (Ids{v.id(kSp), 3 + 0xFF}));
}

TEST(TokenizerSpm, SpacePrefixBeforeTextAndAfterSpecialTokens) {
    VocabBuilder v = spm_vocab();
    const int32_t sp = v.add(kSp, TokenType::Normal, -10);
    v.add("a", TokenType::Normal, -1);
    const int32_t sp_a = v.add(kSp + "a", TokenType::Normal, -2);
    gguf::Metadata md = v.spm();
    auto tok = Tokenizer::from_metadata(md);
    EXPECT_EQ(tok->encode("a", false, false), (Ids{sp_a}));
    EXPECT_EQ(tok->encode("a", true, false), (Ids{1, sp_a}));  // SentencePiece adds BOS by default
    EXPECT_EQ(tok->encode("a a", false, false), (Ids{sp_a, sp_a}));
    EXPECT_EQ(tok->encode(" a", false, false), (Ids{sp, sp_a}));
    EXPECT_EQ(tok->encode("a</s>a", false, true), (Ids{sp_a, 2, sp_a}));
    for (const std::string s : {"a", "a a", " a", "  a ", "a</s>a", "</s> a", "\u00E9a"}) {
        EXPECT_EQ(tok->decode(tok->encode(s, false, true)), s) << s;
        // With BOS in front (hidden when rendering without specials) and "</s>" left as text.
        EXPECT_EQ(tok->decode(tok->encode(s, true, false), false), s) << s;
    }
    md.set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(false));
    md.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false));
    tok = Tokenizer::from_metadata(md);
    EXPECT_EQ(tok->encode("a", true, false), (Ids{v.id("a")}));
    EXPECT_EQ(tok->decode(Ids{sp_a}), " a");
}

// ---------------------------------------------------------------------------------------------
// Streaming detokenization

const std::string kReplacement = "\uFFFD";

TEST(TokenizerStreaming, HoldsBackSplitCharacters) {
    VocabBuilder v = spm_vocab();
    const int32_t sp_a = v.add(kSp + "a", TokenType::Normal, -2);
    const auto tok = Tokenizer::from_metadata(v.spm());
    StreamingDecoder d(*tok);
    EXPECT_EQ(d.push(3 + 0xC3), "");
    EXPECT_EQ(d.push(3 + 0xA9), "\u00E9");
    // U+1F642 is F0 9F 99 82.
    EXPECT_EQ(d.push(3 + 0xF0), "");
    EXPECT_EQ(d.push(3 + 0x9F), "");
    EXPECT_EQ(d.push(3 + 0x99), "");
    EXPECT_EQ(d.push(3 + 0x82), "\U0001F642");
    EXPECT_EQ(d.push(sp_a), " a");  // generated text keeps its spaces
    EXPECT_EQ(d.flush(), "");
}

TEST(TokenizerStreaming, ReplacesBytesThatCannotFormCharacters) {
    VocabBuilder v = spm_vocab();
    const auto tok = Tokenizer::from_metadata(v.spm());
    StreamingDecoder d(*tok);
    EXPECT_EQ(d.push(3 + 0xA9), kReplacement);  // lone continuation byte
    EXPECT_EQ(d.push(3 + 0xC3), "");
    EXPECT_EQ(d.push(3 + 'a'), kReplacement + "a");  // C3 cut short by 'a'
    EXPECT_EQ(d.push(3 + 0xE0), "");
    EXPECT_EQ(d.push(3 + 0x80), kReplacement + kReplacement);  // E0 80 is overlong
    EXPECT_EQ(d.push(3 + 0xF0), "");
    EXPECT_EQ(d.push(3 + 0x9F), "");
    EXPECT_EQ(d.flush(), kReplacement);  // the stream ended inside a character
    EXPECT_EQ(d.flush(), "");
}

TEST(TokenizerStreaming, ControlTokensOnlyWhenRendered) {
    VocabBuilder v = spm_vocab();
    const auto tok = Tokenizer::from_metadata(v.spm());
    StreamingDecoder plain(*tok);
    EXPECT_EQ(plain.push(2), "");
    StreamingDecoder rendered(*tok, true);
    EXPECT_EQ(rendered.push(2), "</s>");
}

TEST(TokenizerStreaming, JoinsByteLevelCharacterHalves) {
    VocabBuilder v;
    v.add_byte_level();
    const auto tok = Tokenizer::from_metadata(v.bpe({}));
    StreamingDecoder d(*tok);
    EXPECT_EQ(d.push(v.id(byte_char(0xC3))), "");
    EXPECT_EQ(d.push(v.id(byte_char(0xA9))), "\u00E9");
}

// Whatever valid text is encoded, streaming its ids gives it back in valid UTF-8 pieces.
TEST(TokenizerStreaming, EveryPieceIsValidUtf8) {
    VocabBuilder v = spm_vocab();
    v.add(kSp, TokenType::Normal, -10);
    v.add("a", TokenType::Normal, -1);
    v.add(kSp + "a", TokenType::Normal, -2);
    v.add("\u00E9", TokenType::Normal, -3);
    const auto tok = Tokenizer::from_metadata(v.spm());
    const std::vector<std::string> alphabet = {"a", " ", "\u00E9", "\u4F60", "\U0001F642", "\n", "\u00E9a"};
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        std::string text;
        const int len = static_cast<int>(rng() % 12);
        for (int i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
        StreamingDecoder d(*tok);
        std::string streamed;
        for (const int32_t id : tok->encode(text, false, false)) {
            const std::string piece = d.push(id);
            const auto scan = runtime::unicode::scan_utf8(piece);
            EXPECT_EQ(scan.valid, piece.size());
            streamed += piece;
        }
        streamed += d.flush();
        EXPECT_EQ(streamed, text.empty() ? "" : " " + text);  // the space encode() put in front
    }
}

}  // namespace
