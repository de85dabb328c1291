// Tokenizers read from real GGUF files: the byte-level BPE of the tiny models against the ids Hugging
// Face's tokenizer produced (refs.json, refs.safetensors), and the 32000-token Llama 2 SentencePiece
// vocabulary against its well-known behaviour.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convert/json.h"
#include "fixtures.h"
#include "gguf/file.h"
#include "runtime/tokenizer.h"

namespace {

using runtime::StreamingDecoder;
using runtime::Tokenizer;
using Ids = std::vector<int32_t>;
using testing_support::fixture;

std::string read_file(const std::string& relative) {
    std::ifstream in(fixture(relative), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::unique_ptr<Tokenizer> load(const std::string& relative) {
    return Tokenizer::from_metadata(gguf::File::open(fixture(relative).string()).metadata());
}

// The `tokens` tensor of refs.safetensors (int32 [2,128]): the first 256 tokens of dev_eval.txt as
// Hugging Face tokenized it, one row after the other.
Ids reference_tokens(const std::string& relative) {
    const std::string bytes = read_file(relative);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), sizeof header_size);
    const auto header = convert::json::parse(std::string_view(bytes).substr(8, header_size), relative);
    const auto& tokens = header["tokens"];
    EXPECT_EQ(tokens["dtype"].as_string(), "I32");
    const size_t begin = 8 + header_size + static_cast<size_t>(tokens["data_offsets"].at(0).as_int());
    const size_t end = 8 + header_size + static_cast<size_t>(tokens["data_offsets"].at(1).as_int());
    Ids ids((end - begin) / sizeof(int32_t));
    std::memcpy(ids.data(), bytes.data() + begin, end - begin);
    return ids;
}

// Prints throughput next to the result: a cheap benchmark on a realistic text.
Ids timed_encode(const Tokenizer& tok, const std::string& text, const std::string& what) {
    const auto t0 = std::chrono::steady_clock::now();
    Ids ids = tok.encode(text, false, false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ encode   ] %s: %zu bytes -> %zu tokens in %.1f ms (%.0f tokens/s)\n", what.c_str(), text.size(),
                ids.size(), s * 1e3, ids.size() / s);
    return ids;
}

class TinyModelTokenizer : public ::testing::TestWithParam<std::string> {};

// Every case of refs.json: text -> ids with no special tokens added, where "<|endoftext|>" in the
// text is the special token (Hugging Face always parses added tokens).
TEST_P(TinyModelTokenizer, MatchesTokenizerCases) {
    const std::string model = GetParam();
    REQUIRE_FIXTURE("gguf/" + model + "-bf16.gguf");
    REQUIRE_FIXTURE("hf/" + model + "/refs.json");
    const auto tok = load("gguf/" + model + "-bf16.gguf");
    EXPECT_EQ(tok->kind(), Tokenizer::Kind::Bpe);
    EXPECT_EQ(tok->n_vocab(), 4096u);
    EXPECT_EQ(tok->eos(), 0);
    EXPECT_TRUE(tok->is_eog(0));
    EXPECT_FALSE(tok->add_bos());

    const auto refs = convert::json::parse_file(fixture("hf/" + model + "/refs.json").string());
    const auto& cases = refs["tokenizer_cases"];
    ASSERT_GT(cases.size(), 0u);
    for (const auto& c : cases.items()) {
        const std::string& text = c["text"].as_string();
        Ids expected;
        for (const auto& id : c["ids"].items()) expected.push_back(static_cast<int32_t>(id.as_int()));
        const Ids ids = tok->encode(text, false, true);
        EXPECT_EQ(ids, expected) << "text: '" << text << "'";
        EXPECT_EQ(tok->decode(ids), text);
    }
}

TEST_P(TinyModelTokenizer, MatchesReferenceTokensAndRoundTripsDevEval) {
    const std::string model = GetParam();
    REQUIRE_FIXTURE("gguf/" + model + "-bf16.gguf");
    REQUIRE_FIXTURE("hf/" + model + "/refs.safetensors");
    REQUIRE_FIXTURE("text/dev_eval.txt");
    const auto tok = load("gguf/" + model + "-bf16.gguf");
    const std::string text = read_file("text/dev_eval.txt");
    const Ids ids = timed_encode(*tok, text, model + " dev_eval.txt");

    const Ids reference = reference_tokens("hf/" + model + "/refs.safetensors");
    ASSERT_EQ(reference.size(), 256u);
    ASSERT_GE(ids.size(), reference.size());
    EXPECT_EQ(Ids(ids.begin(), ids.begin() + 256), reference);
    EXPECT_EQ(tok->decode(ids), text);

    StreamingDecoder stream(*tok);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, text);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TinyModelTokenizer, ::testing::Values("tiny-dense", "tiny-moe"));

// Llama 2's SentencePiece vocabulary: ids 0-2 are <unk> <s> </s>, 3-258 the byte tokens <0x00>..<0xFF>
// (so byte b is id 3 + b), and "▁" (29871) is the lone space marker. Expected ids are the vocabulary
// ids of the pieces named beside them; the segmentations are Llama 2's well-known ones and were checked
// against a separate implementation of llama.cpp's highest-score-first merging over this vocabulary.
class Llama2Tokenizer : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_FIXTURE("gguf/llama-2-tiny-random.gguf");
        tok = load("gguf/llama-2-tiny-random.gguf");
    }
    std::unique_ptr<Tokenizer> tok;
};

TEST_F(Llama2Tokenizer, SpecialTokens) {
    EXPECT_EQ(tok->kind(), Tokenizer::Kind::Spm);
    EXPECT_EQ(tok->n_vocab(), 32000u);
    EXPECT_EQ(tok->bos(), 1);
    EXPECT_EQ(tok->eos(), 2);
    EXPECT_EQ(tok->unk(), 0);
    EXPECT_TRUE(tok->add_bos());
    EXPECT_FALSE(tok->add_eos());
    EXPECT_TRUE(tok->is_eog(2));
    EXPECT_FALSE(tok->is_eog(1));
    EXPECT_EQ(tok->token_text(15043), "\u2581Hello");
    EXPECT_EQ(tok->token_to_piece(15043), " Hello");
    EXPECT_EQ(tok->token_to_piece(13), "\n");  // <0x0A>
}

TEST_F(Llama2Tokenizer, KnownSegmentations) {
    // "▁Hello" "▁world"; with BOS in front when special tokens are added.
    EXPECT_EQ(tok->encode("Hello world", false, false), (Ids{15043, 3186}));
    EXPECT_EQ(tok->encode("Hello world", true, false), (Ids{1, 15043, 3186}));
    EXPECT_EQ(tok->encode("hello", false, false), (Ids{22172}));  // "▁hello"
    // A leading space becomes a lone "▁" before "▁Hello": "▁▁Hello" is no token.
    EXPECT_EQ(tok->encode(" Hello", false, false), (Ids{29871, 15043}));
    // "▁" then <0x0A>: no piece holds a newline.
    EXPECT_EQ(tok->encode("\n", false, false), (Ids{29871, 13}));
    // U+1F642 is no piece: its bytes F0 9F 99 82 as byte tokens.
    EXPECT_EQ(tok->encode("\U0001F642", false, false), (Ids{29871, 3 + 0xF0, 3 + 0x9F, 3 + 0x99, 3 + 0x82}));
    // "▁The" "▁quick" "▁brown" "▁fo" "x" "▁j" "umps" "▁over" "▁the" "▁lazy" "▁dog" ".": "▁fox" and
    // "▁jumps" are not in the vocabulary.
    EXPECT_EQ(tok->encode("The quick brown fox jumps over the lazy dog.", false, false),
              (Ids{450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889}));
    // "▁h" "él" "lo" "▁w" "ör" "ld" "▁" "你" "好"
    EXPECT_EQ(tok->encode("h\u00E9llo w\u00F6rld \u4F60\u597D", false, false),
              (Ids{298, 3610, 417, 281, 1340, 430, 29871, 30919, 31076}));
    // Runs of spaces: "▁▁" "▁two" "▁" "▁spaces".
    EXPECT_EQ(tok->encode("  two  spaces", false, false), (Ids{259, 1023, 29871, 8162}));
    EXPECT_EQ(tok->encode("", true, false), (Ids{1}));
    EXPECT_EQ(tok->encode("", false, false), (Ids{}));
}

TEST_F(Llama2Tokenizer, SpecialTokensInText) {
    // Parsed: <s> and </s> are ids 1 and 2, and the text after <s> gets its "▁" prefix.
    EXPECT_EQ(tok->encode("<s>Hello</s>", false, true), (Ids{1, 15043, 2}));
    // Spelled out: "▁<" "s" ">" "Hello" "</" "s" ">".
    EXPECT_EQ(tok->encode("<s>Hello</s>", false, false), (Ids{529, 29879, 29958, 10994, 829, 29879, 29958}));
    EXPECT_EQ(tok->decode(Ids{1, 15043, 2}), "<s>Hello</s>");
    EXPECT_EQ(tok->decode(Ids{1, 15043, 2}, false), "Hello");
}

TEST_F(Llama2Tokenizer, RoundTripsAndStreamsDevEval) {
    REQUIRE_FIXTURE("text/dev_eval.txt");
    const std::string text = read_file("text/dev_eval.txt");
    const Ids ids = timed_encode(*tok, text, "llama-2 dev_eval.txt");
    EXPECT_EQ(tok->decode(ids), text);
    StreamingDecoder stream(*tok);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, " " + text);  // streaming keeps the space encode() put in front
}

}  // namespace
