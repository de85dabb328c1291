// The grammar matcher (grammar/matcher.h): stacks of rule positions advanced one code point at a time.
#include "grammar/matcher.h"

#include <algorithm>
#include <set>
#include <string>

#include "utf8.h"

namespace grammar {

namespace {

[[noreturn]] void too_ambiguous(size_t limit) {
    throw Error("grammar: more than " + std::to_string(limit) +
                " parse states at one position: the grammar is too ambiguous (alternatives or repetitions that "
                "match the same text many ways)");
}

}  // namespace

Vocabulary::Vocabulary(std::vector<std::string> pieces, std::vector<std::string> texts, std::vector<bool> end)
    : pieces_(std::move(pieces)), texts_(std::move(texts)), end_(std::move(end)) {
    end_.resize(pieces_.size(), false);
    decoded_.resize(pieces_.size());
    for (size_t id = 0; id < pieces_.size(); ++id) {
        const std::string_view s = pieces_[id];
        Decoded& d = decoded_[id];
        size_t pos = 0;
        bool ok = !s.empty();
        while (ok && pos < s.size()) {
            const auto [cp, len] = utf8::decode_one(s.substr(pos));
            if (len > 0) {
                d.cps.push_back(cp);
                pos += len;
                continue;
            }
            // an unfinished character is allowed only at the very end of the token
            const int need = utf8::sequence_length(static_cast<unsigned char>(s[pos]));
            ok = need > 1 && s.size() - pos < static_cast<size_t>(need);
            for (size_t i = pos + 1; ok && i < s.size(); ++i) ok = (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
            if (ok) {
                d.partial = std::string(s.substr(pos));
                const auto [lo, hi] = utf8::partial_range(d.partial);
                ok = lo <= hi;
            }
            break;
        }
        d.valid = ok;
        if (ok) by_text_.push_back(static_cast<int32_t>(id));
    }
    std::sort(by_text_.begin(), by_text_.end(),
              [this](int32_t a, int32_t b) { return decoded_[static_cast<size_t>(a)].cps < decoded_[static_cast<size_t>(b)].cps; });
}

int32_t Vocabulary::find_text(const std::string& text) const {
    for (size_t id = 0; id < texts_.size(); ++id) {
        if (texts_[id] == text) return static_cast<int32_t>(id);
    }
    return -1;
}

Matcher::Matcher(const Grammar& grammar, const Vocabulary& vocab) : g_(grammar), v_(vocab) {
    for (const Rule& r : g_.rules()) {
        for (const Alternative& alt : r.alternatives) {
            for (const Element& e : alt) {
                if (e.kind != ElementKind::Token) continue;
                int32_t id = e.token;
                if (!e.token_text.empty()) {
                    id = v_.find_text(e.token_text);
                    if (id < 0) throw Error("grammar: token " + e.token_text + " is not a token of this model's vocabulary");
                } else if (id < 0 || static_cast<size_t>(id) >= v_.size()) {
                    throw Error("grammar: token <[" + std::to_string(id) + "]> is outside the vocabulary (" +
                                std::to_string(v_.size()) + " tokens)");
                }
                token_ids_[&e] = id;
            }
        }
    }
    reset();
}

void Matcher::expand(Stack stack, std::vector<Stack>& out, std::set<Stack>& seen, int depth) const {
    if (stack.empty() || stack.back()->kind != ElementKind::RuleRef) {
        out.push_back(std::move(stack));
        if (out.size() > kMaxStacks) too_ambiguous(kMaxStacks);
        return;
    }
    // a chain of rules each starting with the next: bounded so that a hostile grammar cannot overflow the stack
    if (depth > kMaxChain) {
        throw Error("grammar: more than " + std::to_string(kMaxChain) + " rules start one inside another");
    }
    if (!seen.insert(stack).second) return;
    if (seen.size() > kMaxStacks) too_ambiguous(kMaxStacks);
    const Element* ref = stack.back();
    stack.pop_back();
    if ((ref + 1)->kind != ElementKind::End) stack.push_back(ref + 1);
    for (const Alternative& alt : g_.rules()[ref->rule].alternatives) {
        Stack s = stack;
        if (alt[0].kind != ElementKind::End) s.push_back(&alt[0]);
        expand(std::move(s), out, seen, depth + 1);
    }
}

void Matcher::dedupe(std::vector<Stack>& stacks) {
    std::sort(stacks.begin(), stacks.end());
    stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
}

void Matcher::reset() {
    state_ = {};
    Element root{ElementKind::RuleRef};
    root.rule = g_.root();
    // a stand-alone reference followed by an End, as in an alternative
    const Element seq[2] = {root, Element{}};
    Stack s{&seq[0]};
    std::set<Stack> seen;
    expand(std::move(s), state_.stacks, seen);
    dedupe(state_.stacks);
}

bool Matcher::complete() const {
    return std::any_of(state_.stacks.begin(), state_.stacks.end(), [](const Stack& s) { return s.empty(); });
}

void Matcher::advance(const std::vector<Stack>& stacks, uint32_t cp, std::vector<Stack>& out) const {
    out.clear();
    std::set<Stack> seen;
    for (const Stack& s : stacks) {
        if (s.empty()) continue;
        const Element* top = s.back();
        if (top->kind != ElementKind::Chars || !top->matches(cp)) continue;
        Stack next(s.begin(), s.end() - 1);
        if ((top + 1)->kind != ElementKind::End) next.push_back(top + 1);
        expand(std::move(next), out, seen);
    }
    if (out.size() > 1) dedupe(out);
}

bool Matcher::token_matches(const Element* e, int32_t id) const {
    const int32_t want = token_ids_.at(e);
    return e->negated ? id != want : id == want;
}

void Matcher::advance_token(const std::vector<Stack>& stacks, int32_t id, std::vector<Stack>& out) const {
    std::set<Stack> seen;
    for (const Stack& s : stacks) {
        if (s.empty() || s.back()->kind != ElementKind::Token || !token_matches(s.back(), id)) continue;
        const Element* top = s.back();
        Stack next(s.begin(), s.end() - 1);
        if ((top + 1)->kind != ElementKind::End) next.push_back(top + 1);
        expand(std::move(next), out, seen);
    }
}

bool Matcher::partial_fits(const std::vector<Stack>& stacks, const std::string& partial) const {
    const auto [lo, hi] = utf8::partial_range(partial);
    if (lo > hi) return false;
    for (const Stack& s : stacks) {
        if (!s.empty() && s.back()->kind == ElementKind::Chars && s.back()->matches_any(lo, hi)) return true;
    }
    return false;
}

Matcher::State Matcher::after_text(const State& from, const std::string& bytes) const {
    State st{from.stacks, {}};
    const std::string data = from.partial + bytes;
    const std::string_view s = data;
    std::vector<Stack> next;
    size_t pos = 0;
    while (pos < s.size() && !st.stacks.empty()) {
        const auto [cp, len] = utf8::decode_one(s.substr(pos));
        if (len == 0) {
            const int need = utf8::sequence_length(static_cast<unsigned char>(s[pos]));
            bool ok = need > 1 && s.size() - pos < static_cast<size_t>(need);
            for (size_t i = pos + 1; ok && i < s.size(); ++i) ok = (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
            if (ok && partial_fits(st.stacks, std::string(s.substr(pos)))) st.partial = std::string(s.substr(pos));
            else st.stacks.clear();
            return st;
        }
        advance(st.stacks, cp, next);
        st.stacks.swap(next);
        pos += len;
    }
    return st;
}

bool Matcher::text_allowed(const State& from, int32_t id) const {
    const Vocabulary::Decoded& d = v_.decoded_[static_cast<size_t>(id)];
    if (!from.partial.empty()) return !v_.piece(id).empty() && !after_text(from, v_.piece(id)).stacks.empty();
    if (!d.valid) return false;
    std::vector<Stack> cur = from.stacks, next;
    for (uint32_t cp : d.cps) {
        advance(cur, cp, next);
        if (next.empty()) return false;
        cur.swap(next);
    }
    return d.partial.empty() || partial_fits(cur, d.partial);
}

bool Matcher::allows(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= v_.size()) return false;
    if (v_.is_end(id)) return complete();
    if (state_.partial.empty()) {
        for (const Stack& s : state_.stacks) {
            if (!s.empty() && s.back()->kind == ElementKind::Token && token_matches(s.back(), id)) return true;
        }
    }
    return text_allowed(state_, id);
}

void Matcher::walk(const std::vector<Stack>& stacks, size_t begin, size_t end, size_t depth,
                   std::vector<char>& allowed) const {
    const auto& order = v_.by_text_;
    const auto cps = [&](size_t i) -> const std::vector<uint32_t>& { return v_.decoded_[static_cast<size_t>(order[i])].cps; };
    size_t i = begin;
    // tokens that end here (sorted first: a prefix orders before its extensions)
    for (; i < end && cps(i).size() == depth; ++i) {
        const auto& d = v_.decoded_[static_cast<size_t>(order[i])];
        if (d.partial.empty() || partial_fits(stacks, d.partial)) allowed[static_cast<size_t>(order[i])] = 1;
    }
    std::vector<Stack> next;
    while (i < end) {
        const uint32_t c = cps(i)[depth];
        const size_t j = static_cast<size_t>(
            std::upper_bound(order.begin() + static_cast<ptrdiff_t>(i), order.begin() + static_cast<ptrdiff_t>(end), c,
                             [&](uint32_t v, int32_t id) { return v < v_.decoded_[static_cast<size_t>(id)].cps[depth]; }) -
            order.begin());
        advance(stacks, c, next);
        if (!next.empty()) walk(next, i, j, depth + 1, allowed);
        i = j;
    }
}

void Matcher::allowed(std::vector<char>& allowed) const {
    allowed.assign(v_.size(), 0);
    if (!state_.partial.empty()) {
        for (size_t id = 0; id < v_.size(); ++id) allowed[id] = !v_.is_end(static_cast<int32_t>(id)) && text_allowed(state_, static_cast<int32_t>(id));
    } else {
        walk(state_.stacks, 0, v_.by_text_.size(), 0, allowed);
        for (const Stack& s : state_.stacks) {
            if (s.empty() || s.back()->kind != ElementKind::Token) continue;
            const int32_t want = token_ids_.at(s.back());
            if (!s.back()->negated) {
                allowed[static_cast<size_t>(want)] = 1;
            } else {
                for (size_t id = 0; id < v_.size(); ++id) allowed[id] |= static_cast<int32_t>(id) != want;
            }
        }
    }
    const bool done = complete();
    for (size_t id = 0; id < v_.size(); ++id) {
        if (v_.end_[id]) allowed[id] = done;
    }
}

void Matcher::accept(int32_t id) {
    if (id < 0 || static_cast<size_t>(id) >= v_.size()) throw Error("grammar: token id " + std::to_string(id) + " is outside the vocabulary");
    if (v_.is_end(id)) {
        if (!complete()) throw Error("grammar: the text ended before the grammar was complete");
        return;
    }
    std::vector<Stack> by_token;
    if (state_.partial.empty()) advance_token(state_.stacks, id, by_token);
    State st = v_.piece(id).empty() ? State{} : after_text(state_, v_.piece(id));
    st.stacks.insert(st.stacks.end(), by_token.begin(), by_token.end());
    if (st.stacks.empty()) throw Error("grammar: token " + std::to_string(id) + " ('" + v_.piece(id) + "') is not allowed here");
    dedupe(st.stacks);
    state_ = std::move(st);
}

}  // namespace grammar
