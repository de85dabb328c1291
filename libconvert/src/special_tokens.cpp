// llama.cpp's SpecialVocab, reimplemented: which ids are bos/eos/..., whether the tokenizer adds
// them, and the chat template. The order things are recorded in is kept, since GGUF keys follow it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "convert/error.h"
#include "vocab_loaders.h"

namespace fs = std::filesystem;

namespace convert {

namespace {

const json::Value* member(const json::Value* v, std::string_view key) {
    return v && v->is_object() ? v->find(key) : nullptr;
}

std::optional<std::string> string_of(const json::Value* v) {
    if (v && v->is_string()) return v->as_string();
    return std::nullopt;
}

// The token id string of a TemplateProcessing item {"SpecialToken": {"id": "<s>", ...}}.
std::optional<std::string> special_token_id(const json::Value& item) {
    return string_of(member(member(&item, "SpecialToken"), "id"));
}

std::optional<std::string> sequence_id(const json::Value& item) {
    return string_of(member(member(&item, "Sequence"), "id"));
}

bool equals_any(const std::optional<std::string>& v, std::initializer_list<const std::optional<std::string>*> others) {
    if (!v) return false;
    for (const auto* o : others)
        if (*o && **o == *v) return true;
    return false;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error(p.string() + ": cannot open file");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

class Collector {
public:
    Collector(SpecialTokens& out, std::optional<size_t> n_vocab, Vocab& vocab)
        : out_(out), n_vocab_(n_vocab), vocab_(vocab) {}

    // First value wins, as in llama.cpp: tokenizer_config.json outranks config.json.
    void set_id(const std::string& type, const json::Value* v, const std::string& source) {
        if (!v || !v->is_integer()) return;
        const int64_t id = v->as_int();
        if (id < 0) throw Error(source + ": invalid id " + std::to_string(id) + " for the " + type + " token");
        if (n_vocab_ && static_cast<uint64_t>(id) >= *n_vocab_) {
            vocab_.warnings.push_back("special token " + type + " id " + std::to_string(id) + " is not below the " +
                                      "vocabulary size " + std::to_string(*n_vocab_) + "; skipped");
            return;
        }
        if (id > UINT32_MAX) throw Error(source + ": id " + std::to_string(id) + " for the " + type + " token is too large");
        for (const auto& [t, _] : out_.ids)
            if (t == type) return;
        out_.ids.emplace_back(type, static_cast<uint32_t>(id));
    }

    // Later values replace earlier ones in place (a Python dict update keeps the key's position).
    void set_add(const std::string& type, bool value) {
        for (auto& [t, v] : out_.add)
            if (t == type) {
                v = value;
                return;
            }
        out_.add.emplace_back(type, value);
    }

private:
    SpecialTokens& out_;
    std::optional<size_t> n_vocab_;
    Vocab& vocab_;
};

}  // namespace

SpecialTokens load_special_tokens(const std::string& dir_arg, const json::Value* tokenizer_json, const HfConfig& hparams,
                                  std::optional<size_t> n_vocab, Vocab& vocab) {
    const fs::path dir(dir_arg);
    SpecialTokens st;
    Collector c(st, n_vocab, vocab);
    std::vector<std::string> types = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

    const fs::path tc_path = dir / "tokenizer_config.json";
    std::optional<json::Value> tc;
    if (fs::is_regular_file(tc_path)) {
        tc = json::parse_file(tc_path.string());
        if (!tc->is_object()) throw Error(tc_path.string() + ": not a JSON object");
        vocab.input_files.push_back(tc_path.string());
    }
    // tokenizer_config.json's "<type>_token" entries, as overridden by the post-processor analysis.
    std::map<std::string, std::optional<std::string>> overrides;
    const auto tc_token = [&](const std::string& type) -> std::optional<std::string> {
        if (auto o = overrides.find(type); o != overrides.end()) return o->second;
        return tc ? string_of(tc->find(type + "_token")) : std::nullopt;
    };
    const bool has_tc = tc && tc->size() > 0;
    // Python truthiness of a token setting: a non-empty string, or an AddedToken dict, which
    // never equals a template's token id but still counts as set.
    const auto is_set = [&](const std::string& type, const std::optional<std::string>& v) {
        if (v) return !v->empty();
        if (overrides.count(type) || !tc) return false;
        const json::Value* e = tc->find(type + "_token");
        return e && e->is_object() && e->size() > 0;
    };

    if (tokenizer_json) {
        std::optional<std::string> special_bos = tc_token("bos"), special_cls = tc_token("cls");
        std::optional<std::string> special_eos = tc_token("eos"), special_sep = tc_token("sep");
        if (!is_set("bos", special_bos) && is_set("cls", special_cls) && has_tc) overrides["bos"] = special_bos = special_cls;
        if (!is_set("eos", special_eos) && is_set("sep", special_sep) && has_tc) overrides["eos"] = special_eos = special_sep;

        const json::Value* post = member(tokenizer_json, "post_processor");
        std::vector<const json::Value*> processors;
        if (const json::Value* list = member(post, "processors"); list && list->is_array()) {
            for (const auto& p : list->items()) processors.push_back(&p);
        } else if (post && post->is_object()) {
            processors.push_back(post);
        }
        for (const json::Value* proc : processors) {
            const std::optional<std::string> type = string_of(member(proc, "type"));
            if (type == "RobertaProcessing") {
                c.set_add("bos", true);
                c.set_add("eos", true);
                c.set_add("sep", true);
                if (!is_set("cls", special_cls) && has_tc) {
                    const json::Value* cls = member(proc, "cls");
                    special_cls = cls && cls->is_array() && cls->size() > 0 ? string_of(&cls->at(0)) : special_bos;
                    overrides["cls"] = special_cls;
                }
                if (!is_set("sep", special_sep) && has_tc) {
                    const json::Value* sep = member(proc, "sep");
                    special_sep = sep && sep->is_array() && sep->size() > 0 ? string_of(&sep->at(0)) : special_eos;
                    overrides["sep"] = special_sep;
                }
                continue;
            }
            if (type != "TemplateProcessing") continue;
            // A simple template ("<s> $A </s>") tells whether bos/eos are added; unusual
            // templates are beyond this, as they are beyond llama.cpp's reading of them.
            const json::Value* single = member(proc, "single");
            const json::Value* pair = member(proc, "pair");
            std::optional<std::string> special_first, special_last;
            if (single && single->is_array() && single->size() > 1) {
                special_first = special_token_id(single->at(0));
                if (special_first) {
                    if (!has_tc) special_bos = special_first;
                    c.set_add("bos", equals_any(special_first, {&special_bos, &special_cls}));
                    if (!equals_any(special_first, {&special_bos, &special_cls}))
                        vocab.warnings.push_back("unknown leading special token " + *special_first +
                                                 " in the tokenizer's template");
                }
                special_last = special_token_id(single->at(single->size() - 1));
                if (special_last) {
                    if (!has_tc) {
                        special_eos = special_last;
                    } else if (special_last != special_eos) {
                        // The template appends something other than eos: llama.cpp keeps the
                        // configured eos as eot (or eom) and makes the appended token eos.
                        if (std::find(types.begin(), types.end(), "eot") == types.end()) {
                            types.push_back("eot");
                            overrides["eot"] = special_eos;
                        } else if (std::find(types.begin(), types.end(), "eom") == types.end()) {
                            types.push_back("eom");
                            overrides["eom"] = special_eos;
                        }
                        overrides["eos"] = special_eos = special_last;
                    }
                    c.set_add("eos", special_last == special_eos);
                }
            }
            if (pair && pair->is_array() && pair->size() > 0) {
                const auto& items = pair->items();
                size_t begin = special_first && special_token_id(items.front()) == special_first ? 1 : 0;
                size_t end = special_last && special_token_id(items.back()) == special_last ? items.size() - 1 : items.size();
                if (begin < end) {
                    const std::optional<std::string> a = sequence_id(items[begin]), b = sequence_id(items[end - 1]);
                    if (a == "A" && b == "B" && end - begin > 2) {
                        // A [sep] [eos] B
                        bool add_sep = false;
                        if (auto e = special_token_id(items[begin + 1]))
                            if (equals_any(e, {&special_sep, &special_eos}) && !special_last) add_sep = true;
                        if (end - begin == 4)
                            if (auto e = special_token_id(items[begin + 2]))
                                if (equals_any(e, {&special_sep, &special_eos})) add_sep = true;
                        c.set_add("sep", add_sep);
                        if (add_sep && !is_set("sep", special_sep) && has_tc) overrides["sep"] = special_eos;
                    }
                }
            }
        }
    }

    if (has_tc) {
        // The template: tokenizer_config.json's, else chat_template.jinja, else chat_template.json.
        const json::Value* tmpl = tc->find("chat_template");
        std::optional<json::Value> alt;
        if (!tc->contains("chat_template")) {
            const fs::path jinja = dir / "chat_template.jinja", js = dir / "chat_template.json";
            if (fs::is_regular_file(jinja)) {
                st.chat_template = read_text(jinja);
                vocab.input_files.push_back(jinja.string());
            } else if (fs::is_regular_file(js)) {
                alt = json::parse_file(js.string());
                vocab.input_files.push_back(js.string());
                tmpl = member(&*alt, "chat_template");
            }
        }
        if (tmpl && tmpl->is_string()) {
            st.chat_template = tmpl->as_string();
        } else if (tmpl && tmpl->is_array()) {
            for (const auto& choice : tmpl->items()) {
                std::optional<std::string> name = string_of(member(&choice, "name"));
                std::optional<std::string> text = string_of(member(&choice, "template"));
                if (!name || name->empty() || !text) continue;
                for (char& ch : *name)
                    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                if (*name == "default") st.chat_template = *text;
                else st.named_chat_templates.emplace_back(*name, *text);
            }
        } else if (tmpl && !tmpl->is_null()) {
            vocab.warnings.push_back("chat_template in " + tc_path.string() + " has an unexpected type; ignored");
        }

        const json::Value* added_tokens = member(tokenizer_json, "added_tokens");
        for (const std::string& type : types) {
            if (const json::Value* add = tc->find("add_" + type + "_token"); add && add->is_bool())
                c.set_add(type, add->as_bool());
            std::optional<std::string> content = tc_token(type);
            if (!overrides.count(type))
                if (const json::Value* e = tc->find(type + "_token"); e && e->is_object())
                    content = string_of(e->find("content"));
            if (!content || !added_tokens || !added_tokens->is_array()) continue;
            for (const auto& tok : added_tokens->items())
                if (string_of(member(&tok, "content")) == content) {
                    c.set_id(type, member(&tok, "id"), tc_path.string());
                    break;
                }
        }
    }

    for (const std::string& type : types) c.set_id(type, hparams.find({type + "_token_id"}), hparams.source());
    // generation_config.json last: it only fills what the tokenizer files and config.json leave unset.
    const fs::path gen_path = dir / "generation_config.json";
    if (fs::is_regular_file(gen_path)) {
        json::Value gen = json::parse_file(gen_path.string());
        vocab.input_files.push_back(gen_path.string());
        for (const std::string& type : types) c.set_id(type, member(&gen, type + "_token_id"), gen_path.string());
    }
    return st;
}

}  // namespace convert
