// Applying a grammar to a model's tokens. The match state is a set of stacks of positions in the rules
// (each stack's top is the next character or token to match); a token is allowed when its characters
// carry at least one stack through. The vocabulary is decoded into code points once and kept sorted, so
// that the allowed set for a 150k-token vocabulary is found by walking the shared prefixes once, dropping
// a whole prefix as soon as no stack survives it.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"

namespace grammar {

class Vocabulary {
public:
    // pieces: each token's bytes (empty: never matched as text, e.g. control tokens); texts: as stored in
    // the vocabulary, for <text> token references; end: tokens that end generation, allowed only where
    // the grammar is complete.
    Vocabulary(std::vector<std::string> pieces, std::vector<std::string> texts, std::vector<bool> end);

    size_t size() const { return pieces_.size(); }
    const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
    bool is_end(int32_t id) const { return end_[static_cast<size_t>(id)]; }
    // The id whose stored text is exactly `text`, or -1.
    int32_t find_text(const std::string& text) const;

private:
    friend class Matcher;
    struct Decoded {
        std::vector<uint32_t> cps;  // complete characters
        std::string partial;        // the first bytes of a character the token leaves unfinished
        bool valid = false;         // decodable from a character boundary, non-empty
    };
    std::vector<std::string> pieces_, texts_;
    std::vector<bool> end_;
    std::vector<Decoded> decoded_;
    std::vector<int32_t> by_text_;  // valid ids sorted by code points, for the prefix walk
};

class Matcher {
public:
    // Keeps references to both; resolves <text> token references (an unknown one throws grammar::Error).
    Matcher(const Grammar& grammar, const Vocabulary& vocab);
    Matcher(Grammar&&, const Vocabulary&) = delete;  // would outlive the grammar
    Matcher(const Grammar&, Vocabulary&&) = delete;

    // Back to the start of the root rule.
    void reset();
    // Whether the text so far is a complete match (an end-of-generation token is allowed).
    bool complete() const;
    // Whether the token may come next.
    bool allows(int32_t id) const;
    // allowed[id] for every token of the vocabulary.
    void allowed(std::vector<char>& allowed) const;
    // Moves past a token; throws grammar::Error if it is not allowed.
    void accept(int32_t id);

    using Stack = std::vector<const Element*>;

private:
    struct State {
        std::vector<Stack> stacks;
        std::string partial;  // bytes of a character started by the last token
    };
    static constexpr int kMaxChain = 20000;
    // Parse states at one position: more means a grammar ambiguous enough to exhaust memory.
    static constexpr size_t kMaxStacks = 100000;
    // Appends to `out` the stacks that `stack` stands for once every rule reference on top is replaced by
    // its alternatives. `seen`: the stacks with a reference on top already expanded in this step, which are
    // not expanded again (empty alternatives and optional repetitions reach the same stack by many paths).
    void expand(Stack stack, std::vector<Stack>& out, std::set<Stack>& seen, int depth = 0) const;
    void advance(const std::vector<Stack>& stacks, uint32_t cp, std::vector<Stack>& out) const;
    static void dedupe(std::vector<Stack>& stacks);
    // The state after the token's bytes, or no stacks when they do not match.
    State after_text(const State& from, const std::string& bytes) const;
    bool text_allowed(const State& from, int32_t id) const;
    bool partial_fits(const std::vector<Stack>& stacks, const std::string& partial) const;
    bool token_matches(const Element* e, int32_t id) const;
    void advance_token(const std::vector<Stack>& stacks, int32_t id, std::vector<Stack>& out) const;
    void walk(const std::vector<Stack>& stacks, size_t begin, size_t end, size_t depth, std::vector<char>& allowed) const;

    const Grammar& g_;
    const Vocabulary& v_;
    std::unordered_map<const Element*, int32_t> token_ids_;  // Token elements' ids, <text> ones resolved
    State state_;
};

}  // namespace grammar
