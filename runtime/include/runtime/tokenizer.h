// Text <-> token ids for GGUF models, built from the tokenizer.ggml.* metadata the way llama.cpp reads
// it: byte-level BPE ("gpt2" with the gpt-2, llama3 and qwen2 pre-tokenizers) and SentencePiece
// ("llama": score-ordered merges, byte fallback, the U+2581 space marker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gguf {
class Metadata;
}

namespace runtime {

namespace tokenizer_detail {
struct State;
}

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

inline constexpr int32_t kNoToken = -1;

class Tokenizer {
public:
    enum class Kind { Spm, Bpe };  // tokenizer.ggml.model "llama" / "gpt2"

    // Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, *_token_id, add_bos_token,
    // add_eos_token, add_space_prefix}. An unsupported model or pre-tokenizer, or inconsistent
    // arrays, throw runtime::Error.
    static std::unique_ptr<Tokenizer> from_metadata(const gguf::Metadata& metadata);

    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // add_special: put BOS / EOS around the text where the model asks for them (add_bos_token,
    // add_eos_token). parse_special: control tokens written in the text ("<|im_start|>") become their
    // ids instead of being spelled out; user-defined tokens are always matched, as in llama.cpp.
    // Invalid UTF-8 is read as U+FFFD by the byte-level BPE (as llama.cpp does), and kept byte for
    // byte by SentencePiece's byte fallback.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token stands for: a byte token gives one byte (maybe part of a UTF-8 character),
    // a control or unknown token its text. An id outside the vocabulary throws runtime::Error.
    const std::string& token_to_piece(int32_t id) const;

    // The pieces concatenated, so that decode(encode(s, ...)) == s; render_special = false leaves out
    // control and unknown tokens. SentencePiece drops the space encode() put in front of the text
    // and after each special token. Unlike llama_detokenize, spaces are never "cleaned up".
    std::string decode(std::span<const int32_t> ids, bool render_special = true) const;

    Kind kind() const;
    size_t n_vocab() const;
    const std::string& token_text(int32_t id) const;  // as stored in the vocabulary
    TokenType token_type(int32_t id) const;

    // Special token ids, kNoToken when the model has none.
    int32_t bos() const;
    int32_t eos() const;
    int32_t eot() const;
    int32_t unk() const;
    int32_t pad() const;
    bool add_bos() const;
    bool add_eos() const;
    // End of generation: EOS, EOT, EOM and the end-of-turn tokens llama.cpp recognizes by their text.
    bool is_eog(int32_t id) const;

private:
    explicit Tokenizer(std::unique_ptr<const tokenizer_detail::State> state);
    std::unique_ptr<const tokenizer_detail::State> s_;
};

// Turns generated ids into text as they arrive, holding back the bytes of a UTF-8 character split
// across tokens (SentencePiece byte tokens, partial byte-level BPE characters) so that every
// returned string is valid UTF-8. Bytes that can never form a character come out as U+FFFD.
class StreamingDecoder {
public:
    explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = false)
        : tokenizer_(tokenizer), render_special_(render_special) {}

    // The text completed by this token (possibly empty).
    std::string push(int32_t id);
    // At the end of a stream: an unfinished character left over, as U+FFFD (or nothing).
    std::string flush();

private:
    const Tokenizer& tokenizer_;
    bool render_special_;
    std::string pending_;
};

}  // namespace runtime
