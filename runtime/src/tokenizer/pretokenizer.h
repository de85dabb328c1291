// The regex pre-tokenizers of byte-level BPE vocabularies, written as hand scanners over code points.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace runtime::tokenizer_detail {

// Which split pattern a vocabulary was trained with (tokenizer.ggml.pre selects it). The patterns,
// as llama.cpp runs them:
//   Gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//           \s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:  as Llama3 with \p{N} (one digit per word)
//   Qwen35: as Qwen2 with [\p{L}\p{M}]+ for the letter run and marks excluded from the symbol run
//   Gpt4o:  (o200k, gpt-oss) [^\r\n\p{L}\p{N}]?U*L+C?|[^\r\n\p{L}\p{N}]?U+L*C?|\p{N}{1,3}|
//           ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+  with U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}],
//           L = [\p{Ll}\p{Lm}\p{Lo}\p{M}] and C = (?i:'s|'t|'re|'ve|'m|'ll|'d), with the real Unicode
//           cases (as the tokenizers library matches it; llama.cpp approximates U and L by ASCII case)
// The contractions' case-insensitivity is ASCII-only, as in llama.cpp.
enum class PreTokenizer { Gpt2, Llama3, Qwen2, Qwen35, Gpt4o };

// Cuts `text` (which decode_lenient reads without replacements, see unicode.h) into words. `words`
// receives the byte offset where each word ends; the first starts at 0 and they cover all of `text`.
// The scratch vectors are reused between calls to avoid allocations.
class WordSplitter {
public:
    explicit WordSplitter(PreTokenizer kind) : kind_(kind) {}
    void split(std::string_view text, std::vector<uint32_t>& word_ends);

private:
    void split_gpt2(std::vector<uint32_t>& word_ends) const;
    void split_llama3(std::vector<uint32_t>& word_ends, size_t max_digits, bool marks_are_letters) const;
    void split_gpt4o(std::vector<uint32_t>& word_ends) const;

    PreTokenizer kind_;
    std::vector<uint32_t> cps_;
    std::vector<uint8_t> props_;
    std::vector<uint32_t> offsets_;  // byte offset of each code point, plus the text's size
};

}  // namespace runtime::tokenizer_detail
