#include <algorithm>
#include <cstdio>

#include "state.h"
#include "unicode.h"

namespace runtime::tokenizer_detail {

namespace {

struct Symbol {
    uint32_t begin;
    uint32_t end;  // begin == end once merged into the left neighbour
    int32_t prev;
    int32_t next;
};

struct Candidate {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;  // bytes of the merged text when the candidate was made
};

// Heap order: the highest score on top, and of equal scores the leftmost pair (llama.cpp's order).
struct CandidateAfter {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

SpmModel::SpmModel(const Vocab& vocab, int32_t unk) : vocab_(vocab), unk_(unk) {
    for (unsigned b = 0; b < 256; ++b) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t id = vocab.find(hex);
        // Vocabularies without byte tokens may still have the byte itself (llama.cpp's fallback).
        if (id == kNoToken) id = vocab.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
        byte_token_[b] = id;
    }
}

void SpmModel::encode(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;

    // Symbols are the UTF-8 characters as their lead bytes announce them (cut short at the end);
    // malformed bytes become one-byte symbols and so byte tokens.
    std::vector<Symbol> symbols;
    for (size_t pos = 0; pos < text.size();) {
        const size_t len = std::min(unicode::sequence_length(static_cast<uint8_t>(text[pos])), text.size() - pos);
        const auto i = static_cast<int32_t>(symbols.size());
        symbols.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + len), i - 1, -1});
        if (i > 0) symbols[i - 1].next = i;
        pos += len;
    }

    std::vector<Candidate> heap;
    const auto push_candidate = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const uint32_t size = symbols[right].end - symbols[left].begin;
        const int32_t id = vocab_.find(text.substr(symbols[left].begin, size));
        if (id == kNoToken) return;
        heap.push_back({vocab_.scores[id], left, right, size});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) push_candidate(i - 1, i);

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
        const Candidate c = heap.back();
        heap.pop_back();
        Symbol& left = symbols[c.left];
        Symbol& right = symbols[c.right];
        // Stale when either side has merged since (a merged-away symbol is empty, a grown one longer).
        if (left.begin == left.end || right.begin == right.end || right.end - left.begin != c.size) continue;
        left.end = right.end;
        right.end = right.begin;
        left.next = right.next;
        if (right.next >= 0) symbols[right.next].prev = c.left;
        push_candidate(left.prev, c.left);
        push_candidate(c.left, left.next);
    }

    // Every merge made a token, so only unmerged characters can be missing from the vocabulary.
    for (int32_t i = 0; i >= 0; i = symbols[i].next) {
        const std::string_view piece = text.substr(symbols[i].begin, symbols[i].end - symbols[i].begin);
        if (const int32_t id = vocab_.find(piece); id != kNoToken) {
            out.push_back(id);
            continue;
        }
        for (const char ch : piece) {
            const int32_t id = byte_token_[static_cast<uint8_t>(ch)];
            // Without a byte token the byte is unknown; a vocabulary with neither loses it.
            if (id != kNoToken) {
                out.push_back(id);
            } else if (unk_ != kNoToken) {
                out.push_back(unk_);
            }
        }
    }
}

}  // namespace runtime::tokenizer_detail
