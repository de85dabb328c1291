#include <algorithm>

#include "state.h"
#include "unicode.h"

namespace runtime::tokenizer_detail {

namespace {

// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the other 68 bytes
// (controls, space, DEL, NBSP, soft hyphen) take the code points from U+0100 on, in byte order.
bool is_self_mapped(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

std::array<uint32_t, 256> byte_to_codepoint_table() {
    std::array<uint32_t, 256> table{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) table[b] = is_self_mapped(b) ? b : next++;
    return table;
}

const std::array<uint32_t, 256>& byte_to_codepoint() {
    static const std::array<uint32_t, 256> table = byte_to_codepoint_table();
    return table;
}

// The byte a byte-level character stands for, or -1.
int codepoint_to_byte(uint32_t cp) {
    if (cp < 256) return is_self_mapped(cp) ? static_cast<int>(cp) : -1;
    const auto& table = byte_to_codepoint();
    if (cp >= 256 + 68) return -1;
    const auto it = std::find(table.begin(), table.end(), cp);
    return static_cast<int>(it - table.begin());
}

struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
};

struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t left_id;
    int32_t right_id;
    int32_t result;
};

// Heap order: the lowest rank on top, and of equal ranks the leftmost pair, as llama.cpp (and HF) do.
struct CandidateAfter {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

constexpr int32_t kMerged = -2;  // id of a symbol absorbed into its left neighbour

}  // namespace

BpeModel::BpeModel(const Vocab& vocab, const std::vector<std::string>& merges, PreTokenizer pre, bool ignore_merges)
    : vocab_(vocab), pre_(pre), ignore_merges_(ignore_merges) {
    TokenIndex virtual_index;
    for (uint32_t b = 0; b < 256; ++b) {
        unicode::append_utf8(byte_chars_[b], byte_to_codepoint()[b]);
        byte_symbol_[b] = id_or_virtual(byte_chars_[b], virtual_index);
    }
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const std::string& m = merges[rank];
        // The separator is the first space after the first character, so a left part that is
        // itself a space-like character survives (as in llama.cpp).
        const size_t sep = m.find(' ', 1);
        if (sep == std::string::npos) continue;
        const std::string left = m.substr(0, sep);
        const std::string right = m.substr(sep + 1);
        const int32_t left_id = id_or_virtual(left, virtual_index);
        const int32_t right_id = id_or_virtual(right, virtual_index);
        const int32_t result = id_or_virtual(left + right, virtual_index);
        // An earlier duplicate keeps its rank.
        merges_.emplace(pair_key(left_id, right_id), Merge{static_cast<int32_t>(rank), result});
    }
}

int32_t BpeModel::id_or_virtual(const std::string& text, TokenIndex& virtual_index) {
    if (const int32_t id = vocab_.find(text); id != kNoToken) return id;
    const auto [it, inserted] =
        virtual_index.emplace(text, vocab_.size() + static_cast<int32_t>(virtual_texts_.size()));
    if (inserted) virtual_texts_.push_back(text);
    return it->second;
}

void BpeModel::emit(int32_t id, std::vector<int32_t>& out) const {
    if (id < vocab_.size()) {
        out.push_back(id);
        return;
    }
    // A piece the vocabulary lacks: llama.cpp looks each byte of its byte-level text up as a
    // one-byte token and drops the bytes that are none.
    for (const char c : virtual_texts_[id - vocab_.size()]) {
        if (const int32_t byte_id = vocab_.find(std::string_view(&c, 1)); byte_id != kNoToken) out.push_back(byte_id);
    }
}

void BpeModel::encode(std::string_view text, std::vector<int32_t>& out) const {
    // llama.cpp reads malformed UTF-8 as U+FFFD before splitting; do the same so ids match.
    std::string canonical;
    if (!unicode::is_lenient_canonical(text)) {
        canonical = unicode::lenient_canonical(text);
        text = canonical;
    }

    WordSplitter splitter(pre_);
    std::vector<uint32_t> word_ends;
    splitter.split(text, word_ends);

    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    std::string encoded_word;
    const auto push_candidate = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
        if (it == merges_.end()) return;
        heap.push_back({it->second.rank, left, symbols[left].id, symbols[right].id, it->second.result});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
    };

    uint32_t word_begin = 0;
    for (const uint32_t word_end : word_ends) {
        const std::string_view word = text.substr(word_begin, word_end - word_begin);
        word_begin = word_end;

        if (ignore_merges_) {
            encoded_word.clear();
            for (const char c : word) encoded_word += byte_chars_[static_cast<uint8_t>(c)];
            if (const int32_t id = vocab_.find(encoded_word); id != kNoToken) {
                out.push_back(id);
                continue;
            }
        }

        symbols.clear();
        heap.clear();
        const auto n = static_cast<int32_t>(word.size());
        for (int32_t i = 0; i < n; ++i) {
            symbols.push_back({byte_symbol_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1});
        }
        for (int32_t i = 1; i < n; ++i) push_candidate(i - 1, i);

        while (!heap.empty()) {
            std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
            const Candidate c = heap.back();
            heap.pop_back();
            Symbol& left = symbols[c.left];
            // Stale when either side has merged since: the left one changes id, the right one either
            // changes id or disappears (then the left one has changed too).
            if (left.id != c.left_id || left.next < 0 || symbols[left.next].id != c.right_id) continue;
            Symbol& right = symbols[left.next];
            left.id = c.result;
            right.id = kMerged;
            left.next = right.next;
            if (right.next >= 0) symbols[right.next].prev = c.left;
            push_candidate(left.prev, c.left);
            push_candidate(c.left, left.next);
        }
        // Symbols merge into their left neighbour, so the first one is never absorbed.
        for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) emit(symbols[i].id, out);
    }
}

std::string BpeModel::bytes_of(std::string_view token_text) {
    std::string out;
    out.reserve(token_text.size());
    size_t pos = 0;
    while (pos < token_text.size()) {
        const size_t start = pos;
        const uint32_t cp = unicode::decode_lenient(token_text, pos);
        const int b = codepoint_to_byte(cp);
        // A character outside the byte-level alphabet (a hand-added token) stands for itself;
        // llama.cpp prints an [UNK_BYTE_...] marker instead.
        if (b >= 0) {
            out.push_back(static_cast<char>(b));
        } else {
            out.append(token_text.substr(start, pos - start));
        }
    }
    return out;
}

}  // namespace runtime::tokenizer_detail
