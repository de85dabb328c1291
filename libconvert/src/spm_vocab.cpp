// SentencePiece vocabularies from tokenizer.model, laid out as llama.cpp's
// _create_vocab_sentencepiece does (padding, added_tokens.json, added_tokens_decoder).
#include <charconv>
#include <filesystem>

#include "convert/error.h"
#include "convert/sentencepiece_model.h"
#include "vocab_loaders.h"

namespace fs = std::filesystem;

namespace convert {

namespace {

TokenType token_type_of(PieceType t) {
    // llama.cpp asks sentencepiece IsUnknown/IsControl/IsUnused/IsByte; user-defined pieces are
    // none of those and so stay normal.
    switch (t) {
        case PieceType::Unknown: return TokenType::Unknown;
        case PieceType::Control: return TokenType::Control;
        case PieceType::Unused: return TokenType::Unused;
        case PieceType::Byte: return TokenType::Byte;
        case PieceType::Normal:
        case PieceType::UserDefined: return TokenType::Normal;
    }
    return TokenType::Normal;
}

int64_t parse_id(const std::string& s, const std::string& source) {
    int64_t id = -1;
    auto r = std::from_chars(s.data(), s.data() + s.size(), id);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || id < 0)
        throw Error(source + ": added_tokens_decoder key \"" + s + "\" is not a token id");
    return id;
}

}  // namespace

Vocab load_spm_vocab(const std::string& dir_arg, const HfConfig& hparams) {
    const fs::path dir(dir_arg);
    const std::string model_path = (dir / "tokenizer.model").string();
    const std::vector<SentencePiece> pieces = read_sentencepiece_model(model_path);
    Vocab v;
    v.input_files.push_back(model_path);
    v.model = "llama";
    v.pre = "default";

    const int64_t n_vocab = hparams.find_int({"vocab_size"}).value_or(static_cast<int64_t>(pieces.size()));
    if (n_vocab <= 0) throw Error(hparams.source() + ": vocab_size " + std::to_string(n_vocab) + " is not positive");
    const size_t n = static_cast<size_t>(n_vocab);
    v.tokens.resize(n);
    for (size_t i = 0; i < n; ++i) v.tokens[i] = "[PAD" + std::to_string(i) + "]";
    v.scores.assign(n, -10000.0f);
    v.types.assign(n, TokenType::Unused);
    for (size_t i = 0; i < pieces.size(); ++i) {
        if (i >= n) {
            v.warnings.push_back(model_path + ": " + std::to_string(pieces.size() - n) +
                                 " piece(s) beyond vocab_size " + std::to_string(n) + " dropped");
            break;
        }
        v.tokens[i] = pieces[i].piece;
        v.scores[i] = pieces[i].score;
        v.types[i] = token_type_of(pieces[i].type);
    }

    const fs::path added_path = dir / "added_tokens.json";
    if (fs::is_regular_file(added_path)) {
        json::Value added = json::parse_file(added_path.string());
        v.input_files.push_back(added_path.string());
        if (!added.is_object()) throw Error(added_path.string() + ": not a JSON object");
        for (const auto& m : added.entries()) {
            if (!m.value.is_integer() || m.value.as_int() < 0)
                throw Error(added_path.string() + ": \"" + m.key + "\" does not map to a token id");
            const int64_t id = m.value.as_int();
            if (id >= n_vocab) {
                v.warnings.push_back(added_path.string() + ": token \"" + m.key + "\" id " + std::to_string(id) +
                                     " is beyond vocab_size; ignored");
                continue;
            }
            v.tokens[static_cast<size_t>(id)] = m.key;
            v.scores[static_cast<size_t>(id)] = -1000.0f;
            v.types[static_cast<size_t>(id)] = TokenType::UserDefined;
        }
    }

    const fs::path tc_path = dir / "tokenizer_config.json";
    if (fs::is_regular_file(tc_path)) {
        json::Value tc = json::parse_file(tc_path.string());
        const json::Value* decoder = tc.is_object() ? tc.find("added_tokens_decoder") : nullptr;
        if (decoder && decoder->is_object()) {
            for (const auto& m : decoder->entries()) {
                const int64_t id = parse_id(m.key, tc_path.string());
                const json::Value* content = m.value.is_object() ? m.value.find("content") : nullptr;
                if (!content || !content->is_string())
                    throw Error(tc_path.string() + ": added_tokens_decoder entry " + m.key + " has no content");
                if (id >= n_vocab) {
                    v.warnings.push_back(tc_path.string() + ": added token id " + m.key + " is beyond vocab_size; ignored");
                    continue;
                }
                std::string text = content->as_string();
                const json::Value* special = m.value.find("special");
                const size_t i = static_cast<size_t>(id);
                if ((special && special->is_bool() && special->as_bool()) || token_looks_special(text)) {
                    v.types[i] = TokenType::Control;
                } else {
                    for (size_t p; (p = text.find("\xE2\x96\x81")) != std::string::npos;) text.replace(p, 3, " ");
                    v.types[i] = TokenType::UserDefined;
                }
                v.scores[i] = -1000.0f;
                v.tokens[i] = std::move(text);
            }
        }
    }

    const fs::path tok_json_path = dir / "tokenizer.json";
    std::optional<json::Value> tok_json;
    if (fs::is_regular_file(tok_json_path)) tok_json = json::parse_file(tok_json_path.string());
    v.special = load_special_tokens(dir_arg, tok_json ? &*tok_json : nullptr, hparams, n, v);
    return v;
}

}  // namespace convert
