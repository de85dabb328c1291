// What a Tokenizer holds: the vocabulary, the model that segments text, and the special-token setup.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pretokenizer.h"
#include "runtime/tokenizer.h"

namespace runtime::tokenizer_detail {

// Lets the token index be searched with a string_view, without building a std::string per lookup.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocab {
    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<TokenType> types;
    TokenIndex index;

    int32_t size() const { return static_cast<int32_t>(texts.size()); }
    int32_t find(std::string_view text) const {
        const auto it = index.find(text);
        return it == index.end() ? kNoToken : it->second;
    }
};

// Byte-level BPE: text is cut into words by the pre-tokenizer, each byte of a word starts as the
// token of its byte-level character, and adjacent pairs merge lowest rank first.
class BpeModel {
public:
    // merges: tokenizer.ggml.merges, "LEFT RIGHT" in rank order. ignore_merges: a word that is a
    // token as a whole is taken as is (llama3-style vocabularies).
    BpeModel(const Vocab& vocab, const std::vector<std::string>& merges, PreTokenizer pre, bool ignore_merges);
    void encode(std::string_view text, std::vector<int32_t>& out) const;

    // The bytes a normal token stands for: each character of its text mapped back to its byte.
    static std::string bytes_of(std::string_view token_text);

private:
    struct Merge {
        int32_t rank;
        int32_t result;
    };
    static uint64_t pair_key(int32_t left, int32_t right) {
        return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    }
    // Ids past the vocabulary stand for strings that merges mention but the vocabulary lacks, so
    // that merging follows the merge list even then (llama.cpp matches merges by text).
    int32_t id_or_virtual(const std::string& text, TokenIndex& virtual_index);
    void emit(int32_t id, std::vector<int32_t>& out) const;

    const Vocab& vocab_;
    PreTokenizer pre_;
    bool ignore_merges_;
    std::array<int32_t, 256> byte_symbol_{};
    std::array<std::string, 256> byte_chars_;  // the byte-level character of each byte, as UTF-8
    std::vector<std::string> virtual_texts_;
    std::unordered_map<uint64_t, Merge> merges_;
};

// SentencePiece BPE as llama.cpp runs it: characters merge into the highest-scoring token first;
// a final piece that is not a token falls back to byte tokens <0xXX>.
class SpmModel {
public:
    SpmModel(const Vocab& vocab, int32_t unk);
    // `text` already has spaces replaced by U+2581.
    void encode(std::string_view text, std::vector<int32_t>& out) const;

private:
    const Vocab& vocab_;
    std::array<int32_t, 256> byte_token_{};  // kNoToken where there is none; unk is used then
    int32_t unk_;
};

// Gemma 4's tokenizer (tokenizer.ggml.model "gemma4"): SentencePiece-style text (spaces as U+2581, no
// byte-level mapping) merged by tokenizer.ggml.merges' ranks, as Hugging Face's BPE with byte_fallback;
// the text is cut only between newline runs and the rest (llama.cpp's gemma4 pre-tokenizer), and a
// final piece that is not a token falls back to byte tokens <0xXX>.
class MergeSpmModel {
public:
    MergeSpmModel(const Vocab& vocab, const std::vector<std::string>& merges);
    void encode(std::string_view text, std::vector<int32_t>& out) const;

private:
    int32_t id_of(std::string_view text, TokenIndex& extra, std::vector<std::string>& extra_texts) const;
    void encode_word(std::string_view word, std::vector<int32_t>& out) const;

    const Vocab& vocab_;
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left, right) -> (rank, result)
    TokenIndex extra_;                 // merge operands and results the vocabulary lacks
    std::vector<std::string> extra_texts_;
    std::array<int32_t, 256> byte_tokens_{};
};

struct State {
    Tokenizer::Kind kind = Tokenizer::Kind::Spm;
    Vocab vocab;
    std::unique_ptr<BpeModel> bpe;
    std::unique_ptr<SpmModel> spm;
    std::unique_ptr<MergeSpmModel> merge_spm;  // gemma4 (kind Spm: its pieces render like SentencePiece's)

    int32_t bos = kNoToken;
    int32_t eos = kNoToken;
    int32_t eot = kNoToken;
    int32_t eom = kNoToken;
    int32_t unk = kNoToken;
    int32_t pad = kNoToken;
    bool add_bos = false;
    bool add_eos = false;
    bool add_space_prefix = false;  // SentencePiece only

    std::vector<int32_t> special_tokens;  // control, user-defined and unknown tokens, longest text first
    std::vector<std::string> pieces;      // token_to_piece() of every id
    std::vector<bool> eog;

    bool is_special(int32_t id) const {
        const TokenType t = vocab.types[id];
        return t == TokenType::Control || t == TokenType::Unknown || t == TokenType::UserDefined;
    }
};

}  // namespace runtime::tokenizer_detail
