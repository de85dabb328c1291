// A checkpoint's tokenizer as GGUF stores it: llama.cpp's tokenizer.ggml.* keys, built from
// tokenizer.json (byte-level BPE) or tokenizer.model (SentencePiece) plus tokenizer_config.json,
// config.json and generation_config.json for special tokens and the chat template.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convert/hf_config.h"
#include "gguf/metadata.h"

namespace convert {

// GGUF token types (llama.cpp's gguf.TokenType).
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// What llama.cpp's SpecialVocab collects, in the order it collects it (GGUF keeps that order).
struct SpecialTokens {
    std::vector<std::pair<std::string, uint32_t>> ids;  // ("bos", 1), ("eos", 2), ...
    std::vector<std::pair<std::string, bool>> add;      // ("bos", true): add_bos_token, ...
    std::optional<std::string> chat_template;           // the default template
    std::vector<std::pair<std::string, std::string>> named_chat_templates;
};

struct Vocab {
    std::string model;  // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    std::string pre;    // tokenizer.ggml.pre: the pre-tokenizer llama.cpp applies
    std::vector<std::string> tokens;
    std::vector<float> scores;  // SentencePiece only
    std::vector<TokenType> types;
    std::vector<std::string> merges;  // BPE only, "a b" form
    SpecialTokens special;
    std::optional<bool> add_space_prefix;
    std::vector<std::string> input_files;  // every file read
    std::vector<std::string> warnings;     // things llama.cpp would also only warn about
};

// tokenizer.model when present (llama.cpp prefers it), else tokenizer.json. `vocab_size` is
// config.json's when it has one: the GGUF vocabulary is padded to it with [PADn] tokens.
Vocab load_vocab(const std::string& dir, const HfConfig& hparams);

// Appends the tokenizer.* keys, in the order the reference GGUFs hold them.
void add_vocab_metadata(const Vocab& vocab, gguf::Metadata& metadata);

}  // namespace convert
