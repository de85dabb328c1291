// What the tokenizer loaders share inside libconvert (not part of the library's interface).
#pragma once

#include <optional>
#include <string>

#include "convert/vocab.h"

namespace convert {

Vocab load_bpe_vocab(const std::string& dir, const HfConfig& hparams);
Vocab load_spm_vocab(const std::string& dir, const HfConfig& hparams);
// The tokenizer.ggml.pre name for a tokenizer.json pre_tokenizer; throws when unrecognized.
std::string bpe_pre_tokenizer_name(const json::Value& tokenizer_json, const std::string& source);
// llama.cpp's heuristic for added tokens that should be control tokens though not marked special.
bool token_looks_special(const std::string& text);
// SpecialVocab: ids from tokenizer_config.json (matched against tokenizer.json's added tokens),
// then config.json, then generation_config.json; add_*_token flags; chat templates. Tokens at or
// past `n_vocab` (when given) are skipped with a warning.
SpecialTokens load_special_tokens(const std::string& dir, const json::Value* tokenizer_json, const HfConfig& hparams,
                                  std::optional<size_t> n_vocab, Vocab& vocab);

}  // namespace convert
