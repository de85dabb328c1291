// Tokenizer import: byte-level BPE from tokenizer.json and SentencePiece from tokenizer.model laid
// out as llama.cpp does, special tokens and chat templates, and the GGUF keys they become.
#include "convert/vocab.h"

#include <gtest/gtest.h>

#include "convert/error.h"
#include "convert/sentencepiece_model.h"
#include "hf_checkpoint.h"
#include "spm_model.h"

using namespace hf_test;
using convert::TokenType;

namespace {

convert::HfConfig hparams_of(const fs::path& dir) { return convert::HfConfig(convert::json::parse_file((dir / "config.json").string()), "config.json"); }

convert::Vocab load(const fs::path& dir) { return convert::load_vocab(dir.string(), hparams_of(dir)); }

std::string load_error(const fs::path& dir) {
    try {
        load(dir);
    } catch (const convert::Error& e) {
        return e.what();
    }
    return "";
}

std::string with_pre_tokenizer(const std::string& pre) {
    std::string t = tokenizer_json();
    const std::string old = R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true})";
    t.replace(t.find(old), old.size(), "\"pre_tokenizer\":" + pre);
    return t;
}

std::string split_then_bytelevel(const std::string& regex_json) {
    return R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":)" + regex_json +
           R"(},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]})";
}

ModelShape vocab_of(int n) {
    ModelShape s;
    s.vocab = n;
    return s;
}

}  // namespace

TEST(BpeVocab, TokensTypesPaddingAndMerges) {
    TempDir dir("bpe");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(10)));
    write_file(dir / "tokenizer.json", tokenizer_json(
        R"(,{"id":8,"content":"<think>","special":false,"normalized":false})"
        R"(,{"id":9,"content":"<|im_end|>","special":false,"normalized":false})"));
    convert::Vocab v = load(dir.path);
    EXPECT_EQ(v.model, "gpt2");
    EXPECT_EQ(v.pre, "gpt-2");
    EXPECT_EQ(v.tokens, (std::vector<std::string>{"<|endoftext|>", "a", "b", "c", "ab", "abc", "d", "e", "<think>", "<|im_end|>"}));
    EXPECT_EQ(v.types[0], TokenType::Control);      // special
    EXPECT_EQ(v.types[1], TokenType::Normal);
    EXPECT_EQ(v.types[8], TokenType::UserDefined);  // added, not special
    EXPECT_EQ(v.types[9], TokenType::Control);      // added, looks special
    EXPECT_TRUE(v.scores.empty());
    EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "ab c"}));
    // Gaps up to config.json's vocab_size become unused [PADn] tokens.
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(12)));
    v = load(dir.path);
    ASSERT_EQ(v.tokens.size(), 12u);
    EXPECT_EQ(v.tokens[11], "[PAD11]");
    EXPECT_EQ(v.types[11], TokenType::Unused);
    // A token id past vocab_size is an error, not a silent truncation.
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(9)));
    EXPECT_NE(load_error(dir.path).find("token id 9 is not below the vocabulary size 9"), std::string::npos);
}

TEST(BpeVocab, PairMergesEncodeSpaces) {
    TempDir dir("bpe-pairs");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(8)));
    std::string t = tokenizer_json();
    t.replace(t.find(R"([["a","b"],["ab","c"]])"), 22, R"([["a b","c"],["ab","c"]])");
    write_file(dir / "tokenizer.json", t);
    EXPECT_EQ(load(dir.path).merges, (std::vector<std::string>{"a\xC4\xA0" "b c", "ab c"}));
    t.replace(t.find(R"(["ab","c"])"), 10, "[1,2]");
    write_file(dir / "tokenizer.json", t);
    EXPECT_NE(load_error(dir.path).find("merge 1 is neither"), std::string::npos);
}

TEST(BpeVocab, PreTokenizerFromDefinition) {
    TempDir dir("bpe-pre");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(8)));
    const std::string llama3 =
        R"("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")";
    const std::string qwen2 =
        R"("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")";
    write_file(dir / "tokenizer.json", with_pre_tokenizer(split_then_bytelevel(llama3)));
    EXPECT_EQ(load(dir.path).pre, "llama-bpe");
    write_file(dir / "tokenizer.json", with_pre_tokenizer(split_then_bytelevel(qwen2)));
    EXPECT_EQ(load(dir.path).pre, "qwen2");
    // o200k (gpt-oss), as its tokenizer.json spells the split
    const std::string o200k =
        R"("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
        R"([^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
        R"(\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")";
    write_file(dir / "tokenizer.json", with_pre_tokenizer(split_then_bytelevel(o200k)));
    EXPECT_EQ(load(dir.path).pre, "gpt-4o");
    write_file(dir / "tokenizer.json", with_pre_tokenizer(split_then_bytelevel(R"("\\w+")")));
    EXPECT_EQ(load_error(dir.path), (dir / "tokenizer.json").string() +
                                        ": unrecognized BPE pre-tokenizer (supported: GPT-2 byte-level, the Llama 3, "
                                        "Qwen2 and o200k split regexes)");
    write_file(dir / "tokenizer.json", R"({"model":{"type":"Unigram","vocab":[]}})");
    EXPECT_NE(load_error(dir.path).find("tokenizer model type Unigram is not supported"), std::string::npos);
}

TEST(SpecialTokens, TokenizerConfigOutranksConfigAndGenerationConfigFillsGaps) {
    TempDir dir("special");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(8)));  // bos 1, eos 2
    write_file(dir / "tokenizer.json", tokenizer_json());
    write_file(dir / "tokenizer_config.json",
               R"({"bos_token":"<|endoftext|>","eos_token":{"content":"<|endoftext|>"},"add_bos_token":true,)"
               R"("chat_template":"{{ messages }}"})");
    write_file(dir / "generation_config.json", R"({"bos_token_id":5,"pad_token_id":3,"eos_token_id":[2,7]})");
    convert::Vocab v = load(dir.path);
    EXPECT_EQ(v.special.ids, (std::vector<std::pair<std::string, uint32_t>>{{"bos", 0}, {"eos", 0}, {"pad", 3}}));
    EXPECT_EQ(v.special.add, (std::vector<std::pair<std::string, bool>>{{"bos", true}}));
    EXPECT_EQ(v.special.chat_template, "{{ messages }}");

    gguf::Metadata m;
    convert::add_vocab_metadata(v, m);
    std::vector<std::string> keys;
    for (const auto& [k, _] : m.entries()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                                              "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                                              "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                              "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
                                              "tokenizer.chat_template"}));
    EXPECT_EQ(m.get_u32("tokenizer.ggml.padding_token_id"), 3u);
    EXPECT_EQ(m.get_int_array("tokenizer.ggml.token_type")[0], 3);
}

TEST(SpecialTokens, TemplateProcessingSaysWhetherBosIsAdded) {
    TempDir dir("template");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(8)));
    std::string t = tokenizer_json();
    t.replace(t.find("\"post_processor\":null"), 21,
              R"("post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"TemplateProcessing",)"
              R"("single":[{"SpecialToken":{"id":"<|endoftext|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],)"
              R"("pair":[{"SpecialToken":{"id":"<|endoftext|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},)"
              R"({"SpecialToken":{"id":"<|endoftext|>","type_id":1}},{"Sequence":{"id":"B","type_id":1}}]}]})");
    write_file(dir / "tokenizer.json", t);
    write_file(dir / "tokenizer_config.json", R"({"bos_token":"<|endoftext|>","eos_token":"<|endoftext|>"})");
    write_file(dir / "chat_template.jinja", "{% for m in messages %}{{ m }}{% endfor %}");
    convert::Vocab v = load(dir.path);
    // The pair template puts <|endoftext|> (also eos here) between A and B: llama.cpp reads that
    // as a separator being added.
    EXPECT_EQ(v.special.add, (std::vector<std::pair<std::string, bool>>{{"bos", true}, {"sep", true}}));
    EXPECT_EQ(v.special.chat_template, "{% for m in messages %}{{ m }}{% endfor %}");
}

TEST(SpecialTokens, NamedChatTemplates) {
    TempDir dir("templates");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(8)));
    write_file(dir / "tokenizer.json", tokenizer_json());
    write_file(dir / "tokenizer_config.json",
               R"({"chat_template":[{"name":"default","template":"D"},{"name":"tool use","template":"T"}]})");
    convert::Vocab v = load(dir.path);
    gguf::Metadata m;
    convert::add_vocab_metadata(v, m);
    EXPECT_EQ(m.get_string("tokenizer.chat_template"), "D");
    EXPECT_EQ(m.get_string("tokenizer.chat_template.tool_use"), "T");
    EXPECT_EQ(m.get_string_array("tokenizer.chat_templates"), (std::vector<std::string>{"tool_use"}));
}

TEST(SentencePieceModel, ParsesPiecesScoresAndTypes) {
    using convert::PieceType;
    const std::vector<convert::SentencePiece> pieces = {
        {"<unk>", 0, PieceType::Unknown}, {"<s>", 0, PieceType::Control}, {"<0x41>", 0, PieceType::Byte},
        {"\xE2\x96\x81" "a", -1.5f, PieceType::Normal}, {"X", -2.0f, PieceType::UserDefined}, {"z", 0, PieceType::Unused}};
    const std::string bytes = spm_model(pieces);
    auto parsed = convert::parse_sentencepiece_model({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "t.model");
    ASSERT_EQ(parsed.size(), pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i) {
        EXPECT_EQ(parsed[i].piece, pieces[i].piece);
        EXPECT_EQ(parsed[i].score, pieces[i].score);
        EXPECT_EQ(parsed[i].type, pieces[i].type);
    }
}

TEST(SentencePieceModel, RejectsMalformedProtobuf) {
    const auto error = [](const std::string& bytes) {
        try {
            convert::parse_sentencepiece_model({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "t.model");
        } catch (const convert::Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const std::string good = spm_model({{"a", 0, convert::PieceType::Normal}});
    EXPECT_EQ(error(good.substr(0, 3)), "t.model: length-delimited field of 8 bytes runs past the end at offset 2");
    EXPECT_EQ(error("\x0a\x80"), "t.model: truncated varint at offset 2");
    EXPECT_EQ(error("\x0b"), "t.model: pieces field has wire type 3 at offset 1");
    EXPECT_EQ(error(length_delimited(1, varint(2 << 3 | 5) + std::string(4, '\0'))), "t.model: piece 0 has no text at offset 2");
    EXPECT_EQ(error(length_delimited(1, length_delimited(1, "a") + varint(3 << 3) + varint(9))),
              "t.model: piece 0 has undefined type 9 at offset 7");
    EXPECT_EQ(error(""), "t.model: no pieces (not a SentencePiece model?)");
    EXPECT_EQ(error(std::string("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)), "t.model: varint longer than 10 bytes at offset 11");
}

TEST(SpmVocab, LaysOutPiecesAsLlamaCpp) {
    using convert::PieceType;
    TempDir dir("spm");
    write_file(dir / "config.json", config_json("LlamaForCausalLM", vocab_of(10)));
    write_file(dir / "tokenizer.model",
               spm_model({{"<unk>", 0, PieceType::Unknown}, {"<s>", 0, PieceType::Control}, {"</s>", 0, PieceType::Control},
                          {"<0x0A>", 0, PieceType::Byte}, {"\xE2\x96\x81" "a", -1.5f, PieceType::Normal},
                          {"X", -2.0f, PieceType::UserDefined}, {"z", 0, PieceType::Unused}}));
    write_file(dir / "tokenizer_config.json",
               R"({"added_tokens_decoder":{"7":{"content":"<|im_start|>","special":false},)"
               R"("8":{"content":"\u2581hi","special":false}},"unk_token":"<unk>"})");
    convert::Vocab v = load(dir.path);
    EXPECT_EQ(v.model, "llama");
    EXPECT_EQ(v.pre, "default");
    ASSERT_EQ(v.tokens.size(), 10u);
    EXPECT_EQ(v.types, (std::vector<TokenType>{TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Byte,
                                               TokenType::Normal, TokenType::Normal, TokenType::Unused, TokenType::Control,
                                               TokenType::UserDefined, TokenType::Unused}));
    EXPECT_EQ(v.scores[4], -1.5f);
    EXPECT_EQ(v.tokens[7], "<|im_start|>");
    EXPECT_EQ(v.scores[7], -1000.0f);
    EXPECT_EQ(v.tokens[8], " hi");  // user-defined tokens are stored pre-normalized
    EXPECT_EQ(v.tokens[9], "[PAD9]");
    EXPECT_EQ(v.scores[9], -10000.0f);
    EXPECT_TRUE(v.merges.empty());
    EXPECT_EQ(v.special.ids, (std::vector<std::pair<std::string, uint32_t>>{{"bos", 1}, {"eos", 2}}));
}
