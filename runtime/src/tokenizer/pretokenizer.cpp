#include "pretokenizer.h"

#include <algorithm>

#include "unicode.h"

namespace runtime::tokenizer_detail {

namespace {

// Views of one text's code points with the out-of-range positions the scanners probe answered as
// "nothing", so that lookahead needs no bounds checks at the call sites.
struct Cursor {
    const std::vector<uint32_t>& cps;
    const std::vector<uint8_t>& props;
    size_t n;

    uint8_t category(size_t i) const { return props[i] & unicode::kCategoryMask; }
    bool whitespace(size_t i) const { return i < n && (props[i] & unicode::kWhitespace); }
    bool letter(size_t i) const { return i < n && category(i) == unicode::kLetter; }
    bool number(size_t i) const { return i < n && category(i) == unicode::kNumber; }
    bool mark(size_t i) const { return i < n && category(i) == unicode::kMark; }
    // [^\s\p{L}\p{N}]
    bool other(size_t i) const { return i < n && !whitespace(i) && !letter(i) && !number(i); }
    bool newline(size_t i) const { return i < n && (cps[i] == '\r' || cps[i] == '\n'); }
    // o200k's letter classes: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    bool upperish(size_t i) const { return mark(i) || (letter(i) && !(props[i] & unicode::kLower)); }
    bool lowerish(size_t i) const { return mark(i) || (letter(i) && !(props[i] & unicode::kUpperOrTitle)); }

    // " ?": past one optional space leading a run at i (i < n).
    size_t after_space(size_t i) const { return i + (cps[i] == ' ' ? 1 : 0); }

    // Where the whitespace run at i ends as llama3's and o200k's patterns take it: "\s*[\r\n]+" up to
    // its last newline; without a newline, "\s+(?!\S)" leaves the last character of a run to lead the
    // following word (unless the run is a single character).
    size_t whitespace_end(size_t i) const {
        size_t ws = 0;
        size_t newline_end = 0;
        while (whitespace(i + ws)) {
            if (newline(i + ws)) newline_end = i + ws + 1;
            ++ws;
        }
        if (newline_end != 0) return newline_end;
        return i + ((ws > 1 && i + ws < n) ? ws - 1 : ws);
    }

    // Length of the contraction ('s 't 're 've 'm 'll 'd) starting at i, or 0.
    size_t contraction(size_t i, bool ignore_case) const {
        if (cps[i] != '\'' || i + 1 >= n) return 0;
        const auto lower = [&](uint32_t c) { return ignore_case && c >= 'A' && c <= 'Z' ? c + 32 : c; };
        const uint32_t c1 = lower(cps[i + 1]);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (i + 2 >= n) return 0;
        const uint32_t c2 = lower(cps[i + 2]);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
        return 0;
    }
};

}  // namespace

void WordSplitter::split(std::string_view text, std::vector<uint32_t>& word_ends) {
    cps_.clear();
    props_.clear();
    offsets_.clear();
    size_t pos = 0;
    while (pos < text.size()) {
        offsets_.push_back(static_cast<uint32_t>(pos));
        const uint32_t cp = unicode::decode_lenient(text, pos);
        cps_.push_back(cp);
        props_.push_back(unicode::props(cp));
    }
    offsets_.push_back(static_cast<uint32_t>(text.size()));

    switch (kind_) {
        case PreTokenizer::Gpt2: split_gpt2(word_ends); break;
        case PreTokenizer::Llama3: split_llama3(word_ends, 3, false); break;
        case PreTokenizer::Qwen2: split_llama3(word_ends, 1, false); break;
        case PreTokenizer::Qwen35: split_llama3(word_ends, 1, true); break;
        case PreTokenizer::Gpt4o: split_gpt4o(word_ends); break;
    }
}

void WordSplitter::split_gpt2(std::vector<uint32_t>& word_ends) const {
    const Cursor c{cps_, props_, cps_.size()};
    size_t pos = 0;
    const auto emit = [&] { word_ends.push_back(offsets_[pos]); };
    while (pos < c.n) {
        if (const size_t len = c.contraction(pos, false)) {
            pos += len;
            emit();
            continue;
        }
        // " ?X+" for the letter, number and other classes: an optional leading space joins the run.
        const size_t body = c.after_space(pos);
        if (c.letter(body)) {
            pos = body;
            while (c.letter(pos)) ++pos;
        } else if (c.number(body)) {
            pos = body;
            while (c.number(pos)) ++pos;
        } else if (c.other(body)) {
            pos = body;
            while (c.other(pos)) ++pos;
        } else {
            // Only whitespace is left here. "\s+(?!\S)": a run followed by a word leaves its last
            // character to lead that word (unless the run is a single character).
            size_t ws = 1;
            while (c.whitespace(pos + ws)) ++ws;
            pos += (ws > 1 && pos + ws < c.n) ? ws - 1 : ws;
        }
        emit();
    }
}

void WordSplitter::split_llama3(std::vector<uint32_t>& word_ends, size_t max_digits, bool marks_are_letters) const {
    const Cursor c{cps_, props_, cps_.size()};
    const auto letterish = [&](size_t i) { return c.letter(i) || (marks_are_letters && c.mark(i)); };
    const auto otherish = [&](size_t i) { return c.other(i) && !(marks_are_letters && c.mark(i)); };
    size_t pos = 0;
    const auto emit = [&] { word_ends.push_back(offsets_[pos]); };
    while (pos < c.n) {
        if (const size_t len = c.contraction(pos, true)) {
            pos += len;
            emit();
            continue;
        }
        // "[^\r\n\p{L}\p{N}]?\p{L}+": any one non-newline, non-number character may lead a letter run.
        if (!c.newline(pos) && !c.number(pos) && (letterish(pos) || letterish(pos + 1))) {
            ++pos;
            while (letterish(pos)) ++pos;
            emit();
            continue;
        }
        if (c.number(pos)) {
            size_t run_end = pos;
            while (c.number(run_end)) ++run_end;
            while (pos < run_end) {
                pos = std::min(pos + max_digits, run_end);
                emit();
            }
            continue;
        }
        // " ?[^\s\p{L}\p{N}]+[\r\n]*"
        const size_t body = c.after_space(pos);
        if (otherish(body)) {
            pos = body;
            while (otherish(pos)) ++pos;
            while (c.newline(pos)) ++pos;
            emit();
            continue;
        }
        pos = c.whitespace_end(pos);  // only whitespace is left here
        emit();
    }
}

namespace {

// Where U*L+ (upper_plus false) or U+L* (true) starting at i ends as the regex's backtracking leaves it,
// or 0 when it does not match. U and L overlap (Lm, Lo, marks): when the greedy U run is not followed
// by an L, the run gives back characters until its last L-class one can be the L.
size_t letter_run_end(const Cursor& c, size_t i, bool upper_plus) {
    size_t k = i;
    while (c.upperish(k)) ++k;
    if (upper_plus) {
        if (k == i) return 0;
        while (c.lowerish(k)) ++k;
        return k;
    }
    if (c.lowerish(k)) {
        while (c.lowerish(k)) ++k;
        return k;
    }
    for (size_t j = k; j > i; --j) {
        if (c.lowerish(j - 1)) return j;
    }
    return 0;
}

}  // namespace

void WordSplitter::split_gpt4o(std::vector<uint32_t>& word_ends) const {
    const Cursor c{cps_, props_, cps_.size()};
    size_t pos = 0;
    const auto emit = [&] { word_ends.push_back(offsets_[pos]); };
    while (pos < c.n) {
        // the two letter alternatives, each first with a leading [^\r\n\p{L}\p{N}], then without
        size_t end = 0;
        const bool lead = !c.newline(pos) && !c.letter(pos) && !c.number(pos);
        for (const bool upper_plus : {false, true}) {
            if (lead) end = letter_run_end(c, pos + 1, upper_plus);
            if (!end) end = letter_run_end(c, pos, upper_plus);
            if (end) break;
        }
        if (end) {
            pos = end;
            if (pos < c.n) pos += c.contraction(pos, true);
            // case-insensitive 's also matches U+017F (long s), which case-folds to s
            if (pos + 1 < c.n && end == pos && c.cps[pos] == '\'' && c.cps[pos + 1] == 0x17F) pos += 2;
            emit();
            continue;
        }
        if (c.number(pos)) {  // \p{N}{1,3}
            const size_t run_end = std::min(pos + 3, c.n);
            while (pos < run_end && c.number(pos)) ++pos;
            emit();
            continue;
        }
        // " ?[^\s\p{L}\p{N}]+[\r\n/]*"
        const size_t body = c.after_space(pos);
        if (c.other(body)) {
            pos = body;
            while (c.other(pos)) ++pos;
            while (c.newline(pos) || (pos < c.n && c.cps[pos] == '/')) ++pos;
            emit();
            continue;
        }
        pos = c.whitespace_end(pos);  // only whitespace is left here
        emit();
    }
}

}  // namespace runtime::tokenizer_detail
