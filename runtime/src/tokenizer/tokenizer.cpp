#include "runtime/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include "gguf/error.h"
#include "gguf/metadata.h"
#include "runtime/error.h"
#include "state.h"

namespace runtime {

using tokenizer_detail::BpeModel;
using tokenizer_detail::PreTokenizer;
using tokenizer_detail::SpmModel;
using tokenizer_detail::State;

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// tokenizer.ggml.pre values and what llama.cpp does for each (the subset whose split pattern is one
// of ours). add_bos / ignore_merges are llama.cpp's defaults for them; add_bos_token overrides.
struct PreSpec {
    std::string_view name;
    PreTokenizer kind;
    bool add_bos;
    bool ignore_merges;
};
constexpr PreSpec kPreTokenizers[] = {
    {"gpt-2", PreTokenizer::Gpt2, false, false},
    {"phi-2", PreTokenizer::Gpt2, false, false},
    {"mpt", PreTokenizer::Gpt2, false, false},
    {"olmo", PreTokenizer::Gpt2, false, false},
    {"llama3", PreTokenizer::Llama3, true, true},
    {"llama-v3", PreTokenizer::Llama3, true, true},
    {"llama-bpe", PreTokenizer::Llama3, true, true},
    {"falcon3", PreTokenizer::Llama3, true, true},
    {"pixtral", PreTokenizer::Llama3, true, true},
    {"dbrx", PreTokenizer::Llama3, false, false},
    {"smaug-bpe", PreTokenizer::Llama3, false, false},
    {"qwen2", PreTokenizer::Qwen2, false, false},
    {"deepseek-r1-qwen", PreTokenizer::Qwen2, false, false},
    {"stablelm2", PreTokenizer::Qwen2, false, false},
    {"megrez", PreTokenizer::Qwen2, false, false},
    {"qwen35", PreTokenizer::Qwen35, false, false},
    {"gpt-4o", PreTokenizer::Gpt4o, false, false},
    {"llama4", PreTokenizer::Gpt4o, false, false},
};

// Tokens llama.cpp treats as ending generation because of their text, whatever the metadata says.
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",  // DeepSeek's <｜end▁of▁sentence｜>
    "[e~[",
};
// The end-of-turn token when the metadata names none, by preference.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>",
};

[[noreturn]] void fail(const std::string& what) { throw Error("tokenizer: " + what); }

void check_id(const State& s, int32_t id) {
    if (id < 0 || id >= s.vocab.size()) {
        fail("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(s.vocab.size()));
    }
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
        out.append(s.substr(pos, hit - pos));
        out.append(to);
    }
    out.append(s.substr(pos));
    return out;
}

// "<0xAB>" -> 0xAB, or -1 when the text is not of that form.
int parse_byte_token(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
    const std::string hex(text.substr(3, 2));
    char* end = nullptr;
    const long v = std::strtol(hex.c_str(), &end, 16);
    return end == hex.c_str() + 2 ? static_cast<int>(v) : -1;
}

void load_vocab(State& s, const gguf::Metadata& md) {
    auto& v = s.vocab;
    v.texts = md.get_string_array("tokenizer.ggml.tokens");
    const size_t n = v.texts.size();
    if (n == 0) fail("tokenizer.ggml.tokens is empty");
    if (n > static_cast<size_t>(INT32_MAX / 2)) fail("tokenizer.ggml.tokens has too many entries");

    if (md.contains("tokenizer.ggml.scores")) {
        v.scores = md.get_f32_array("tokenizer.ggml.scores");
        if (v.scores.size() < n) {
            fail("tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries for " +
                 std::to_string(n) + " tokens");
        }
        v.scores.resize(n);
    } else {
        v.scores.assign(n, 0.0f);
    }

    v.types.assign(n, TokenType::Normal);
    if (md.contains("tokenizer.ggml.token_type")) {
        const std::vector<int64_t> types = md.get_int_array("tokenizer.ggml.token_type");
        if (types.size() < n) {
            fail("tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                 std::to_string(n) + " tokens");
        }
        for (size_t i = 0; i < n; ++i) {
            v.types[i] = types[i] >= 0 && types[i] <= 6 ? static_cast<TokenType>(types[i]) : TokenType::Undefined;
        }
    }

    v.index.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        if (v.texts[i].empty()) v.texts[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp names them
        const auto [it, inserted] = v.index.emplace(v.texts[i], static_cast<int32_t>(i));
        if (!inserted) {
            fail("duplicate token '" + v.texts[i] + "' (ids " + std::to_string(it->second) + " and " +
                 std::to_string(i) + ")");
        }
    }
}

// A special token id from the metadata when present and inside the vocabulary; the default
// otherwise (itself dropped when outside the vocabulary).
int32_t special_id(const gguf::Metadata& md, std::string_view key, int32_t dflt, int32_t n_vocab) {
    if (dflt >= n_vocab) dflt = kNoToken;
    if (!md.contains(key)) return dflt;
    const uint32_t id = md.get_u32(key);
    return id < static_cast<uint32_t>(n_vocab) ? static_cast<int32_t>(id) : dflt;
}

void setup_special_tokens(State& s, const gguf::Metadata& md, int32_t default_bos, int32_t default_eos,
                          int32_t default_unk) {
    auto& v = s.vocab;
    const int32_t n = v.size();
    s.bos = special_id(md, "tokenizer.ggml.bos_token_id", default_bos, n);
    s.eos = special_id(md, "tokenizer.ggml.eos_token_id", default_eos, n);
    s.eot = special_id(md, "tokenizer.ggml.eot_token_id", kNoToken, n);
    s.eom = special_id(md, "tokenizer.ggml.eom_token_id", kNoToken, n);
    s.unk = special_id(md, "tokenizer.ggml.unknown_token_id", default_unk, n);
    s.pad = special_id(md, "tokenizer.ggml.padding_token_id", kNoToken, n);

    s.add_bos = md.get_bool_or("tokenizer.ggml.add_bos_token", s.add_bos);
    s.add_eos = md.get_bool_or("tokenizer.ggml.add_eos_token", s.add_eos);
    if (s.add_bos && s.bos == kNoToken) fail("tokenizer.ggml.add_bos_token is true but there is no BOS token");
    if (s.add_eos && s.eos == kNoToken) fail("tokenizer.ggml.add_eos_token is true but there is no EOS token");

    // Tokens recognized by their text are control tokens from here on (llama.cpp fixes up
    // vocabularies that typed them as normal), so they render as specials and parse_special finds them.
    const auto mark_control = [&](int32_t id) { v.types[id] = TokenType::Control; };
    if (s.eot == kNoToken) {
        for (const std::string_view text : kEotTexts) {
            if (const int32_t id = v.find(text); id != kNoToken) {
                s.eot = id;
                mark_control(id);
                break;
            }
        }
    }
    if (s.eom == kNoToken) {
        if (const int32_t id = v.find("<|eom_id|>"); id != kNoToken) {
            s.eom = id;
            mark_control(id);
        }
    }
    s.eog.assign(n, false);
    for (const std::string_view text : kEogTexts) {
        if (const int32_t id = v.find(text); id != kNoToken) {
            s.eog[id] = true;
            mark_control(id);
        }
    }
    for (const int32_t id : {s.eos, s.eot, s.eom}) {
        if (id != kNoToken) s.eog[id] = true;
    }
    // gpt-oss (harmony): <|end|> closes a message, not the generation, when <|return|> and
    // <|call|> exist; its framing tokens are always written out.
    const int32_t ret = v.find("<|return|>"), call = v.find("<|call|>"), end = v.find("<|end|>");
    if (ret != kNoToken && call != kNoToken && end != kNoToken) {
        s.eog[end] = false;
        v.types[end] = TokenType::UserDefined;
    }
    for (const std::string_view text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
        if (const int32_t id = v.find(text); id != kNoToken) v.types[id] = TokenType::UserDefined;
    }

    for (int32_t id = 0; id < n; ++id) {
        if (s.is_special(id)) s.special_tokens.push_back(id);
    }
    std::stable_sort(s.special_tokens.begin(), s.special_tokens.end(),
                     [&](int32_t a, int32_t b) { return v.texts[a].size() > v.texts[b].size(); });
}

void build_pieces(State& s) {
    const auto& v = s.vocab;
    s.pieces.resize(v.texts.size());
    for (size_t id = 0; id < v.texts.size(); ++id) {
        const std::string& text = v.texts[id];
        switch (v.types[id]) {
            case TokenType::Normal:
                s.pieces[id] =
                    s.kind == Tokenizer::Kind::Spm ? replace_all(text, kSpaceMarker, " ") : BpeModel::bytes_of(text);
                break;
            case TokenType::Byte: {
                const int b = parse_byte_token(text);
                s.pieces[id] = b >= 0 ? std::string(1, static_cast<char>(b)) : text;
                break;
            }
            case TokenType::Control:
            case TokenType::Unknown:
            case TokenType::UserDefined:
                s.pieces[id] = text;
                break;
            case TokenType::Unused:
            case TokenType::Undefined:
                break;  // llama.cpp renders nothing for these
        }
    }
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_metadata(const gguf::Metadata& md) {
    auto s = std::make_unique<State>();
    try {
        const std::string model = md.get_string("tokenizer.ggml.model");
        load_vocab(*s, md);
        if (model == "llama") {
            s->kind = Kind::Spm;
            s->add_bos = true;
            s->add_space_prefix = md.get_bool_or("tokenizer.ggml.add_space_prefix", true);
            setup_special_tokens(*s, md, 1, 2, 0);
            s->spm = std::make_unique<SpmModel>(s->vocab, s->unk);
        } else if (model == "gemma4") {
            // SentencePiece-style text merged by rank (MergeSpmModel); llama.cpp always adds BOS here
            s->kind = Kind::Spm;
            s->add_bos = true;
            s->add_space_prefix = md.get_bool_or("tokenizer.ggml.add_space_prefix", false);
            setup_special_tokens(*s, md, kNoToken, kNoToken, kNoToken);
            s->add_bos = true;  // llama.cpp overrides a false add_bos_token for gemma4
            if (s->bos == kNoToken) fail("tokenizer.ggml.bos_token_id is missing (gemma4 always adds BOS)");
            s->merge_spm = std::make_unique<tokenizer_detail::MergeSpmModel>(s->vocab, md.get_string_array("tokenizer.ggml.merges"));
        } else if (model == "gpt2") {
            s->kind = Kind::Bpe;
            const std::string pre = md.get_string_or("tokenizer.ggml.pre", "");
            const PreSpec* spec = nullptr;
            for (const PreSpec& p : kPreTokenizers) {
                if (p.name == pre) spec = &p;
            }
            if (spec == nullptr) {
                fail(pre.empty() ? std::string("tokenizer.ggml.pre is missing")
                                 : "unsupported pre-tokenizer '" + pre + "' (tokenizer.ggml.pre)");
            }
            s->add_bos = spec->add_bos;
            setup_special_tokens(*s, md, 11, 11, kNoToken);
            s->bpe = std::make_unique<BpeModel>(s->vocab, md.get_string_array("tokenizer.ggml.merges"), spec->kind,
                                                spec->ignore_merges);
        } else {
            fail("unsupported tokenizer model '" + model + "' (tokenizer.ggml.model)");
        }
    } catch (const gguf::Error& e) {
        fail(e.what());
    }
    build_pieces(*s);
    return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(s)));
}

Tokenizer::Tokenizer(std::unique_ptr<const State> state) : s_(std::move(state)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const State& s = *s_;

    // Cut special tokens out of the text first, longest text first, every occurrence of one before
    // the next is looked for (llama.cpp's order, which decides overlaps).
    struct Fragment {
        int32_t token;  // kNoToken for text
        size_t begin;
        size_t end;
    };
    std::vector<Fragment> fragments, next;
    if (!text.empty()) fragments.push_back({kNoToken, 0, text.size()});
    for (const int32_t id : s.special_tokens) {
        if (!parse_special && s.vocab.types[id] != TokenType::UserDefined) continue;
        const std::string& special = s.vocab.texts[id];
        if (text.find(special) == std::string_view::npos) continue;
        next.clear();
        for (const Fragment& f : fragments) {
            if (f.token != kNoToken) {
                next.push_back(f);
                continue;
            }
            size_t pos = f.begin;
            for (size_t hit; (hit = text.substr(0, f.end).find(special, pos)) != std::string_view::npos;) {
                if (hit > pos) next.push_back({kNoToken, pos, hit});
                next.push_back({id, hit, hit + special.size()});
                pos = hit + special.size();
            }
            if (pos < f.end) next.push_back({kNoToken, pos, f.end});
        }
        fragments.swap(next);
    }

    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && s.add_bos) out.push_back(s.bos);
    // SentencePiece models see a space before the text and after each special token, so a first word
    // gets the same "▁word" token as a word inside a sentence.
    bool after_special = true;
    for (const Fragment& f : fragments) {
        if (f.token != kNoToken) {
            out.push_back(f.token);
            after_special = true;
            continue;
        }
        const std::string_view piece = text.substr(f.begin, f.end - f.begin);
        if (s.kind == Kind::Bpe) {
            s.bpe->encode(piece, out);
        } else {
            std::string spaced;
            if (s.add_space_prefix && after_special) spaced = " ";
            spaced.append(piece);
            const std::string marked = replace_all(spaced, " ", kSpaceMarker);
            if (s.merge_spm) {
                s.merge_spm->encode(marked, out);
            } else {
                s.spm->encode(marked, out);
            }
        }
        after_special = false;
    }
    if (add_special && s.add_eos) out.push_back(s.eos);
    return out;
}

const std::string& Tokenizer::token_to_piece(int32_t id) const {
    check_id(*s_, id);
    return s_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
    const State& s = *s_;
    std::string out;
    bool after_special = true;
    for (const int32_t id : ids) {
        const std::string& piece = token_to_piece(id);
        const TokenType type = s.vocab.types[id];
        if (s.is_special(id)) {
            if (render_special || type == TokenType::UserDefined) out += piece;
            after_special = true;
            continue;
        }
        // Undo the space encode() put in front of the text and after each special token.
        const bool strip = s.add_space_prefix && after_special && type == TokenType::Normal && !piece.empty() &&
                           piece.front() == ' ';
        out.append(piece, strip ? 1 : 0);
        after_special = false;
    }
    return out;
}

Tokenizer::Kind Tokenizer::kind() const { return s_->kind; }
size_t Tokenizer::n_vocab() const { return s_->vocab.texts.size(); }

const std::string& Tokenizer::token_text(int32_t id) const {
    check_id(*s_, id);
    return s_->vocab.texts[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
    check_id(*s_, id);
    return s_->vocab.types[id];
}

int32_t Tokenizer::bos() const { return s_->bos; }
int32_t Tokenizer::eos() const { return s_->eos; }
int32_t Tokenizer::eot() const { return s_->eot; }
int32_t Tokenizer::unk() const { return s_->unk; }
int32_t Tokenizer::pad() const { return s_->pad; }
bool Tokenizer::add_bos() const { return s_->add_bos; }
bool Tokenizer::add_eos() const { return s_->add_eos; }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < s_->vocab.size() && s_->eog[id]; }

}  // namespace runtime
