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

// The steps of load_special_tokens and what they share: tokenizer_config.json, the "<type>_token"
// entries the post-processor analysis overrides, and the token types in play (eot / eom join when a
// template appends something other than eos).
class SpecialTokenReader {
public:
    SpecialTokenReader(const fs::path& dir, std::optional<size_t> n_vocab, Vocab& vocab, SpecialTokens& st)
        : dir_(dir), tc_path_(dir / "tokenizer_config.json"), vocab_(vocab), st_(st), c_(st, n_vocab, vocab) {
        if (fs::is_regular_file(tc_path_)) {
            tc_ = json::parse_file(tc_path_.string());
            if (!tc_->is_object()) throw Error(tc_path_.string() + ": not a JSON object");
            vocab.input_files.push_back(tc_path_.string());
        }
        has_tc_ = tc_ && tc_->size() > 0;
    }

    bool has_tokenizer_config() const { return has_tc_; }

    // tokenizer.json's post-processor: whether bos / eos / sep are added, and which tokens they are.
    void read_post_processor(const json::Value& tokenizer_json) {
        bos_ = tc_token("bos"), cls_ = tc_token("cls"), eos_ = tc_token("eos"), sep_ = tc_token("sep");
        if (!is_set("bos", bos_) && is_set("cls", cls_) && has_tc_) overrides_["bos"] = bos_ = cls_;
        if (!is_set("eos", eos_) && is_set("sep", sep_) && has_tc_) overrides_["eos"] = eos_ = sep_;

        const json::Value* post = member(&tokenizer_json, "post_processor");
        std::vector<const json::Value*> processors;
        if (const json::Value* list = member(post, "processors"); list && list->is_array()) {
            for (const auto& p : list->items()) processors.push_back(&p);
        } else if (post && post->is_object()) {
            processors.push_back(post);
        }
        for (const json::Value* proc : processors) {
            const std::optional<std::string> type = string_of(member(proc, "type"));
            if (type == "RobertaProcessing") roberta(*proc);
            if (type == "TemplateProcessing") template_processing(*proc);
        }
    }

    // The template: tokenizer_config.json's, else chat_template.jinja, else chat_template.json.
    void read_chat_template() {
        const json::Value* tmpl = tc_->find("chat_template");
        std::optional<json::Value> alt;
        if (!tc_->contains("chat_template")) {
            const fs::path jinja = dir_ / "chat_template.jinja", js = dir_ / "chat_template.json";
            if (fs::is_regular_file(jinja)) {
                st_.chat_template = read_text(jinja);
                vocab_.input_files.push_back(jinja.string());
            } else if (fs::is_regular_file(js)) {
                alt = json::parse_file(js.string());
                vocab_.input_files.push_back(js.string());
                tmpl = member(&*alt, "chat_template");
            }
        }
        if (tmpl && tmpl->is_string()) {
            st_.chat_template = tmpl->as_string();
        } else if (tmpl && tmpl->is_array()) {
            for (const auto& choice : tmpl->items()) {
                std::optional<std::string> name = string_of(member(&choice, "name"));
                std::optional<std::string> text = string_of(member(&choice, "template"));
                if (!name || name->empty() || !text) continue;
                for (char& ch : *name)
                    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                if (*name == "default") st_.chat_template = *text;
                else st_.named_chat_templates.emplace_back(*name, *text);
            }
        } else if (tmpl && !tmpl->is_null()) {
            vocab_.warnings.push_back("chat_template in " + tc_path_.string() + " has an unexpected type; ignored");
        }
    }

    // tokenizer_config.json's add_<type>_token flags, and each <type>_token's id from tokenizer.json's
    // added_tokens.
    void read_config_tokens(const json::Value* tokenizer_json) {
        const json::Value* added_tokens = member(tokenizer_json, "added_tokens");
        for (const std::string& type : types_) {
            if (const json::Value* add = tc_->find("add_" + type + "_token"); add && add->is_bool())
                c_.set_add(type, add->as_bool());
            std::optional<std::string> content = tc_token(type);
            if (!overrides_.count(type))
                if (const json::Value* e = tc_->find(type + "_token"); e && e->is_object())
                    content = string_of(e->find("content"));
            if (!content || !added_tokens || !added_tokens->is_array()) continue;
            for (const auto& tok : added_tokens->items())
                if (string_of(member(&tok, "content")) == content) {
                    c_.set_id(type, member(&tok, "id"), tc_path_.string());
                    break;
                }
        }
    }

    // config.json's <type>_token_id, then generation_config.json's: they only fill what the
    // tokenizer files leave unset.
    void read_model_config_ids(const HfConfig& hparams) {
        for (const std::string& type : types_) c_.set_id(type, hparams.find({type + "_token_id"}), hparams.source());
        const fs::path gen_path = dir_ / "generation_config.json";
        if (!fs::is_regular_file(gen_path)) return;
        json::Value gen = json::parse_file(gen_path.string());
        vocab_.input_files.push_back(gen_path.string());
        for (const std::string& type : types_) c_.set_id(type, member(&gen, type + "_token_id"), gen_path.string());
    }

private:
    // tokenizer_config.json's "<type>_token" entries, as overridden by the post-processor analysis.
    std::optional<std::string> tc_token(const std::string& type) const {
        if (auto o = overrides_.find(type); o != overrides_.end()) return o->second;
        return tc_ ? string_of(tc_->find(type + "_token")) : std::nullopt;
    }

    // Python truthiness of a token setting: a non-empty string, or an AddedToken dict, which
    // never equals a template's token id but still counts as set.
    bool is_set(const std::string& type, const std::optional<std::string>& v) const {
        if (v) return !v->empty();
        if (overrides_.count(type) || !tc_) return false;
        const json::Value* e = tc_->find(type + "_token");
        return e && e->is_object() && e->size() > 0;
    }

    void roberta(const json::Value& proc) {
        c_.set_add("bos", true);
        c_.set_add("eos", true);
        c_.set_add("sep", true);
        if (!is_set("cls", cls_) && has_tc_) {
            const json::Value* cls = member(&proc, "cls");
            cls_ = cls && cls->is_array() && cls->size() > 0 ? string_of(&cls->at(0)) : bos_;
            overrides_["cls"] = cls_;
        }
        if (!is_set("sep", sep_) && has_tc_) {
            const json::Value* sep = member(&proc, "sep");
            sep_ = sep && sep->is_array() && sep->size() > 0 ? string_of(&sep->at(0)) : eos_;
            overrides_["sep"] = sep_;
        }
    }

    // A simple template ("<s> $A </s>") tells whether bos/eos are added; unusual templates are
    // beyond this, as they are beyond llama.cpp's reading of them.
    void template_processing(const json::Value& proc) {
        const json::Value* single = member(&proc, "single");
        const json::Value* pair = member(&proc, "pair");
        std::optional<std::string> first, last;
        if (single && single->is_array() && single->size() > 1) {
            first = special_token_id(single->at(0));
            if (first) {
                if (!has_tc_) bos_ = first;
                c_.set_add("bos", equals_any(first, {&bos_, &cls_}));
                if (!equals_any(first, {&bos_, &cls_}))
                    vocab_.warnings.push_back("unknown leading special token " + *first + " in the tokenizer's template");
            }
            last = special_token_id(single->at(single->size() - 1));
            if (last) {
                if (!has_tc_) {
                    eos_ = last;
                } else if (last != eos_) {
                    // The template appends something other than eos: llama.cpp keeps the configured
                    // eos as eot (or eom) and makes the appended token eos.
                    if (std::find(types_.begin(), types_.end(), "eot") == types_.end()) {
                        types_.push_back("eot");
                        overrides_["eot"] = eos_;
                    } else if (std::find(types_.begin(), types_.end(), "eom") == types_.end()) {
                        types_.push_back("eom");
                        overrides_["eom"] = eos_;
                    }
                    overrides_["eos"] = eos_ = last;
                }
                c_.set_add("eos", last == eos_);
            }
        }
        if (pair && pair->is_array() && pair->size() > 0) pair_template(pair->items(), first, last);
    }

    // "$A [sep] [eos] $B": whether a separator goes between the two sequences.
    void pair_template(const std::vector<json::Value>& items, const std::optional<std::string>& first,
                       const std::optional<std::string>& last) {
        size_t begin = first && special_token_id(items.front()) == first ? 1 : 0;
        size_t end = last && special_token_id(items.back()) == last ? items.size() - 1 : items.size();
        if (begin >= end) return;
        const std::optional<std::string> a = sequence_id(items[begin]), b = sequence_id(items[end - 1]);
        if (a != "A" || b != "B" || end - begin <= 2) return;
        bool add_sep = false;
        if (auto e = special_token_id(items[begin + 1]))
            if (equals_any(e, {&sep_, &eos_}) && !last) add_sep = true;
        if (end - begin == 4)
            if (auto e = special_token_id(items[begin + 2]))
                if (equals_any(e, {&sep_, &eos_})) add_sep = true;
        c_.set_add("sep", add_sep);
        if (add_sep && !is_set("sep", sep_) && has_tc_) overrides_["sep"] = eos_;
    }

    const fs::path dir_, tc_path_;
    Vocab& vocab_;
    SpecialTokens& st_;
    Collector c_;
    std::optional<json::Value> tc_;
    bool has_tc_ = false;
    std::map<std::string, std::optional<std::string>> overrides_;
    std::vector<std::string> types_ = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    std::optional<std::string> bos_, cls_, eos_, sep_;  // as the post-processor analysis settles them
};

}  // namespace

SpecialTokens load_special_tokens(const std::string& dir, const json::Value* tokenizer_json, const HfConfig& hparams,
                                  std::optional<size_t> n_vocab, Vocab& vocab) {
    SpecialTokens st;
    SpecialTokenReader r(dir, n_vocab, vocab, st);
    if (tokenizer_json) r.read_post_processor(*tokenizer_json);
    if (r.has_tokenizer_config()) {
        r.read_chat_template();
        r.read_config_tokens(tokenizer_json);
    }
    r.read_model_config_ids(hparams);
    return st;
}

}  // namespace convert
