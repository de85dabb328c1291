// Byte-level BPE vocabularies from tokenizer.json, laid out as llama.cpp's get_vocab_base does.
#include <filesystem>
#include <unordered_map>

#include "convert/error.h"
#include "vocab_loaders.h"

namespace fs = std::filesystem;

namespace convert {

namespace {

// The split regexes of the pre-tokenizers llama.cpp implements, as tokenizer.json spells them.
constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Qwen3.5: Qwen2's with combining marks (\p{M}) kept inside words; llama.cpp's "qwen35"
constexpr std::string_view kQwen35Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kGpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// o200k (gpt-oss, GPT-4o): llama.cpp's "gpt-4o"
constexpr std::string_view kGpt4oRegex =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const json::Value* member(const json::Value* v, std::string_view key) {
    return v && v->is_object() ? v->find(key) : nullptr;
}

bool is_type(const json::Value* v, std::string_view type) {
    const json::Value* t = member(v, "type");
    return t && t->is_string() && t->as_string() == type;
}

// U+0120 ('Ġ'), what llama.cpp turns a space inside a merge pair into: chr(ord(' ') + 256).
constexpr std::string_view kEncodedSpace = "\xC4\xA0";

}  // namespace

bool token_looks_special(const std::string& t) {
    const auto wrapped = [&](std::string_view open, std::string_view close) {
        return t.size() >= open.size() + close.size() && t.starts_with(open) && t.ends_with(close);
    };
    return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
           wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") ||  // <｜...｜> (full-width bars, deepseek)
           wrapped("<unused", ">");
}

std::string bpe_pre_tokenizer_name(const json::Value& tok, const std::string& source) {
    // llama.cpp identifies pre-tokenizers by hashing the token ids HF produces for a probe text;
    // without HF's tokenizer we read the definition instead, which names the same behaviour.
    const json::Value* pre = member(&tok, "pre_tokenizer");
    if (is_type(pre, "ByteLevel")) {
        const json::Value* use_regex = member(pre, "use_regex");
        if (!use_regex || (use_regex->is_bool() && use_regex->as_bool())) return "gpt-2";
    }
    if (is_type(pre, "Sequence")) {
        const json::Value* list = member(pre, "pretokenizers");
        if (list && list->is_array() && list->size() == 2 && is_type(&list->at(0), "Split") &&
            is_type(&list->at(1), "ByteLevel")) {
            const json::Value* use_regex = member(&list->at(1), "use_regex");
            const json::Value* regex = member(member(&list->at(0), "pattern"), "Regex");
            if (use_regex && use_regex->is_bool() && !use_regex->as_bool() && regex && regex->is_string()) {
                const std::string& r = regex->as_string();
                if (r == kLlama3Regex) return "llama-bpe";
                if (r == kQwen2Regex) return "qwen2";
                if (r == kQwen35Regex) return "qwen35";
                if (r == kGpt2Regex) return "gpt-2";
                if (r == kGpt4oRegex) return "gpt-4o";
            }
        }
    }
    throw Error(source + ": unrecognized BPE pre-tokenizer (supported: GPT-2 byte-level, the Llama 3, Qwen2 "
                         "and o200k split regexes)");
}

namespace {

// tokenizer.json's model, refused unless it is byte-level BPE with a vocab object.
const json::Value& bpe_model(const json::Value& tok, const std::string& path) {
    const json::Value* model = member(&tok, "model");
    if (!is_type(model, "BPE")) {
        const json::Value* t = member(model, "type");
        throw Error(path + ": tokenizer model type " + (t && t->is_string() ? t->as_string() : std::string("(missing)")) +
                    " is not supported (supported: byte-level BPE; SentencePiece via tokenizer.model)");
    }
    if (const json::Value* bf = member(model, "byte_fallback"); bf && bf->is_bool() && bf->as_bool())
        throw Error(path + ": BPE with byte_fallback is SentencePiece-style; convert it from tokenizer.model");
    if (const json::Value* vocab = member(model, "vocab"); !vocab || !vocab->is_object())
        throw Error(path + ": model.vocab is not an object");
    return *model;
}

// id -> text over the model's vocabulary and the added tokens (HF's get_vocab()).
struct TokenTable {
    struct Added {
        std::string content;
        bool special;
    };
    std::unordered_map<int64_t, std::string> by_id;
    int64_t max_id = -1;
    std::unordered_map<int64_t, Added> added_by_id;
    std::unordered_map<std::string, int64_t> added_by_content;
};

TokenTable read_tokens(const json::Value& tok, const json::Value& model, const std::string& path) {
    const json::Value* vocab = member(&model, "vocab");  // an object: bpe_model checked
    TokenTable t;
    const auto add_id = [&](int64_t id, const std::string& text, const std::string& what) {
        if (id < 0) throw Error(path + ": " + what + " \"" + text + "\" has negative id " + std::to_string(id));
        t.by_id[id] = text;
        t.max_id = std::max(t.max_id, id);
    };
    for (const auto& m : vocab->entries()) {
        if (!m.value.is_integer()) throw Error(path + ": vocab entry \"" + m.key + "\" has a non-integer id");
        add_id(m.value.as_int(), m.key, "token");
    }
    if (const json::Value* added = member(&tok, "added_tokens"); added && added->is_array()) {
        for (const auto& a : added->items()) {
            const json::Value* id = member(&a, "id");
            const json::Value* content = member(&a, "content");
            if (!id || !id->is_integer() || !content || !content->is_string())
                throw Error(path + ": added_tokens entry without an integer id and a string content");
            const json::Value* special = member(&a, "special");
            add_id(id->as_int(), content->as_string(), "added token");
            t.added_by_id[id->as_int()] = {content->as_string(), special && special->is_bool() && special->as_bool()};
            t.added_by_content[content->as_string()] = id->as_int();
        }
    }
    return t;
}

// Ids 0..n_vocab-1 with their types, as llama.cpp's get_vocab_base lays them out: gaps become
// [PADi] unused tokens, added tokens are control or user-defined.
void lay_out_tokens(const TokenTable& table, int64_t n_vocab, Vocab& v) {
    v.tokens.reserve(static_cast<size_t>(n_vocab));
    v.types.reserve(static_cast<size_t>(n_vocab));
    for (int64_t i = 0; i < n_vocab; ++i) {
        auto it = table.by_id.find(i);
        if (it == table.by_id.end()) {
            v.tokens.push_back("[PAD" + std::to_string(i) + "]");
            v.types.push_back(TokenType::Unused);
            continue;
        }
        std::string text = it->second;
        if (table.added_by_content.count(text)) {
            auto a = table.added_by_id.find(i);
            const bool special = a != table.added_by_id.end() ? a->second.special : false;
            if (special || token_looks_special(text)) {
                v.types.push_back(TokenType::Control);
            } else {
                // llama.cpp expects user-defined tokens pre-normalized: SentencePiece's U+2581 is a space.
                for (size_t p; (p = text.find("\xE2\x96\x81")) != std::string::npos;) text.replace(p, 3, " ");
                v.types.push_back(TokenType::UserDefined);
            }
        } else {
            v.types.push_back(TokenType::Normal);
        }
        v.tokens.push_back(std::move(text));
    }
}

// Merges come as "a b" strings, or (tokenizers >= 0.20) as ["a", "b"] pairs that may hold spaces.
std::vector<std::string> read_merges(const json::Value& model, const std::string& path) {
    std::vector<std::string> out;
    const json::Value* merges = member(&model, "merges");
    if (!merges || !merges->is_array()) return out;
    out.reserve(merges->size());
    for (const auto& m : merges->items()) {
        if (m.is_string()) {
            out.push_back(m.as_string());
        } else if (m.is_array() && m.size() == 2 && m.at(0).is_string() && m.at(1).is_string()) {
            std::string joined;
            for (size_t k = 0; k < 2; ++k) {
                if (k) joined += ' ';
                for (char ch : m.at(k).as_string()) {
                    if (ch == ' ') joined += kEncodedSpace;
                    else joined += ch;
                }
            }
            out.push_back(std::move(joined));
        } else {
            throw Error(path + ": merge " + std::to_string(out.size()) + " is neither \"a b\" nor [\"a\", \"b\"]");
        }
    }
    return out;
}

}  // namespace

Vocab load_bpe_vocab(const std::string& dir, const HfConfig& hparams) {
    const std::string path = (fs::path(dir) / "tokenizer.json").string();
    if (!fs::is_regular_file(path))
        throw Error(dir + ": no tokenizer.json or tokenizer.model (a tokenizer is needed to write a usable GGUF)");
    const json::Value tok = json::parse_file(path);
    Vocab v;
    v.input_files.push_back(path);
    v.model = "gpt2";

    const json::Value& model = bpe_model(tok, path);
    v.pre = bpe_pre_tokenizer_name(tok, path);
    const TokenTable table = read_tokens(tok, model, path);

    const int64_t n_vocab = hparams.find_int({"vocab_size"}).value_or(static_cast<int64_t>(table.by_id.size()));
    if (table.max_id >= n_vocab)
        throw Error(path + ": token id " + std::to_string(table.max_id) + " is not below the vocabulary size " +
                    std::to_string(n_vocab) + " of " + hparams.source());
    lay_out_tokens(table, n_vocab, v);

    v.merges = read_merges(model, path);
    if (v.merges.empty()) v.warnings.push_back(path + ": no merges; the GGUF's tokenizer may not work");

    v.special = load_special_tokens(dir, &tok, hparams, std::nullopt, v);
    return v;
}

}  // namespace convert
