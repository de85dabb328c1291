#include <cstdio>

#include "state.h"

namespace runtime::tokenizer_detail {

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

size_t utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 0x6) return 2;
    if ((c >> 4) == 0xE) return 3;
    if ((c >> 3) == 0x1E) return 4;
    return 1;  // a stray continuation byte stands alone (and falls back to its byte token)
}

}  // namespace

// Ids at or past the vocabulary's size name strings the vocabulary lacks, so that merging follows
// the merge list even through them (they fall back to bytes if they survive).
int32_t MergeSpmModel::id_of(std::string_view text, TokenIndex& extra, std::vector<std::string>& extra_texts) const {
    if (const int32_t id = vocab_.find(text); id != kNoToken) return id;
    if (const auto it = extra.find(text); it != extra.end()) return it->second;
    const int32_t id = vocab_.size() + static_cast<int32_t>(extra_texts.size());
    extra_texts.emplace_back(text);
    extra.emplace(std::string(text), id);
    return id;
}

MergeSpmModel::MergeSpmModel(const Vocab& vocab, const std::vector<std::string>& merges) : vocab_(vocab) {
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        byte_tokens_[static_cast<size_t>(b)] = vocab.find(name);
    }
    int32_t rank = 0;
    for (const std::string& m : merges) {
        // "LEFT RIGHT"; the split is the first space after the first character (llama.cpp's rule)
        const size_t sp = m.find(' ', 1);
        if (sp == std::string::npos) continue;
        const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
        const int32_t l = id_of(left, extra_, extra_texts_), r = id_of(right, extra_, extra_texts_);
        const int32_t res = id_of(left + right, extra_, extra_texts_);
        merges_.emplace(pair_key(l, r), std::make_pair(rank++, res));
    }
}

void MergeSpmModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
    // a word that is a token as a whole (a run of newlines) is taken as is, as llama.cpp does
    if (word.find_first_not_of('\n') == std::string_view::npos) {
        if (const int32_t id = vocab_.find(word); id != kNoToken) {
            out.push_back(id);
            return;
        }
    }
    TokenIndex extra;  // characters neither the vocabulary nor a merge knows
    std::vector<std::string> extra_texts;
    std::vector<int32_t> sym;
    std::vector<std::string> local_texts;  // texts of ids past the model's own extra ids
    const int32_t base = vocab_.size() + static_cast<int32_t>(extra_texts_.size());
    for (size_t i = 0; i < word.size();) {
        const size_t n = std::min(utf8_len(static_cast<unsigned char>(word[i])), word.size() - i);
        const std::string_view ch = word.substr(i, n);
        int32_t id = vocab_.find(ch);
        if (id == kNoToken) {
            const auto it = extra_.find(ch);
            if (it != extra_.end()) {
                id = it->second;
            } else {
                const auto jt = extra.find(ch);
                if (jt != extra.end()) {
                    id = jt->second;
                } else {
                    id = base + static_cast<int32_t>(local_texts.size());
                    local_texts.emplace_back(ch);
                    extra.emplace(std::string(ch), id);
                }
            }
        }
        sym.push_back(id);
        i += n;
    }
    // lowest rank first, the leftmost of equal ranks (each merge has one rank, so ties are the
    // same merge at several places)
    while (sym.size() > 1) {
        int32_t best_rank = INT32_MAX, best_res = 0;
        size_t best = 0;
        for (size_t i = 0; i + 1 < sym.size(); ++i) {
            const auto it = merges_.find(pair_key(sym[i], sym[i + 1]));
            if (it != merges_.end() && it->second.first < best_rank) {
                best_rank = it->second.first;
                best_res = it->second.second;
                best = i;
            }
        }
        if (best_rank == INT32_MAX) break;
        sym[best] = best_res;
        sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    for (const int32_t id : sym) {
        if (id < vocab_.size()) {
            out.push_back(id);
            continue;
        }
        // not a token: its bytes (byte_fallback); <unk> only where a byte token is missing
        const std::string& text = id < base ? extra_texts_[static_cast<size_t>(id - vocab_.size())]
                                            : local_texts[static_cast<size_t>(id - base)];
        for (const char c : text) {
            const int32_t b = byte_tokens_[static_cast<unsigned char>(c)];
            if (b != kNoToken) out.push_back(b);
        }
    }
}

void MergeSpmModel::encode(std::string_view text, std::vector<int32_t>& out) const {
    // llama.cpp's gemma4 split: runs of newlines and runs of anything else
    size_t i = 0;
    while (i < text.size()) {
        const bool nl = text[i] == '\n';
        size_t j = i;
        while (j < text.size() && (text[j] == '\n') == nl) ++j;
        encode_word(text.substr(i, j - i), out);
        i = j;
    }
}

}  // namespace runtime::tokenizer_detail
