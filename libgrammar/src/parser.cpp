// GBNF parser: recursive descent over the source text. Groups become generated rules, and repetitions
// are expanded into copies plus generated right-recursive rules (x* is r ::= x r | ""), so the matcher
// only knows characters, tokens, rule references and alternatives.
#include <algorithm>
#include <map>

#include "grammar/grammar.h"
#include "utf8.h"

namespace grammar {

class Parser {
public:
    explicit Parser(std::string_view src) : src_(src) {}

    Grammar run() {
        skip(true);
        while (pos_ < src_.size()) {
            parse_rule();
            skip(true);
        }
        for (const auto& [name, id] : ids_) {
            if (!defined_[id]) fail_at(first_use_[id], "rule '" + name + "' is used but never defined");
        }
        const auto root = ids_.find("root");
        if (root == ids_.end()) throw Error("grammar: no 'root' rule (the rule the whole output must match)");
        g_.root_ = root->second;
        check_left_recursion();
        return std::move(g_);
    }

private:
    using Seq = std::vector<Element>;

    [[noreturn]] void fail_at(size_t at, const std::string& what) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < at && i < src_.size(); ++i) {
            if (src_[i] == '\n') {
                ++line;
                col = 1;
            } else if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) {
                ++col;
            }
        }
        throw Error("grammar: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
    }
    [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

    bool at_end() const { return pos_ >= src_.size(); }
    char peek(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }
    static bool word_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    }

    // Spaces, tabs and comments; newlines too when `newlines` (between rules, inside parentheses).
    void skip(bool newlines) {
        while (!at_end()) {
            const char c = peek();
            if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
                ++pos_;
            } else if (c == '#') {
                while (!at_end() && peek() != '\n') ++pos_;
            } else {
                break;
            }
        }
    }

    std::string parse_name() {
        const size_t start = pos_;
        while (!at_end() && word_char(peek())) ++pos_;
        if (pos_ == start) fail("expected a rule name");
        return std::string(src_.substr(start, pos_ - start));
    }

    uint32_t rule_id(const std::string& name, size_t used_at) {
        const auto [it, fresh] = ids_.try_emplace(name, static_cast<uint32_t>(g_.rules_.size()));
        if (fresh) {
            g_.rules_.push_back({name, {}});
            defined_.push_back(false);
            first_use_.push_back(used_at);
        }
        return it->second;
    }

    uint32_t generated_rule(const std::string& base) {
        std::string name;
        do name = base + "_" + std::to_string(++generated_); while (ids_.contains(name));
        const uint32_t id = rule_id(name, pos_);
        defined_[id] = true;
        return id;
    }

    void parse_rule() {
        const size_t start = pos_;
        const std::string name = parse_name();
        skip(false);
        if (src_.substr(pos_, 3) != "::=") fail("expected '::=' after the rule name '" + name + "'");
        pos_ += 3;
        skip(true);  // the alternatives may start on the next line
        const uint32_t id = rule_id(name, start);
        if (defined_[id]) fail_at(start, "rule '" + name + "' is defined twice");
        defined_[id] = true;
        auto alts = parse_alternatives(name, false);
        g_.rules_[id].alternatives = std::move(alts);
        skip(false);
        if (!at_end()) {
            if (peek() == '\r') ++pos_;
            if (peek() != '\n') fail(std::string("unexpected '") + peek() + "'");
            ++pos_;
        }
    }

    std::vector<Alternative> parse_alternatives(const std::string& rule, bool nested) {
        std::vector<Alternative> alts;
        alts.push_back(parse_sequence(rule, nested));
        while (peek() == '|') {
            ++pos_;
            skip(true);  // a newline after '|' continues the rule
            alts.push_back(parse_sequence(rule, nested));
        }
        return alts;
    }

    Alternative parse_sequence(const std::string& rule, bool nested) {
        Seq seq;
        size_t last_start = SIZE_MAX;  // where the last symbol begins in seq, for a following repetition
        while (true) {
            skip(nested);
            if (at_end()) break;
            const char c = peek();
            if (c == '|' || c == ')' || c == '\n' || c == '\r') break;
            if (c == '"') {
                ++pos_;
                last_start = seq.size();
                while (peek() != '"') {
                    if (at_end() || peek() == '\n') fail("unterminated string literal");
                    const uint32_t cp = parse_char();
                    Element e{ElementKind::Chars};
                    e.ranges.push_back({cp, cp});
                    seq.push_back(std::move(e));
                }
                ++pos_;
            } else if (c == '[') {
                ++pos_;
                last_start = seq.size();
                seq.push_back(parse_class());
            } else if (c == '.') {
                ++pos_;
                last_start = seq.size();
                Element e{ElementKind::Chars};
                e.ranges.push_back({0, 0x10FFFF});
                seq.push_back(std::move(e));
            } else if (c == '<' || (c == '!' && peek(1) == '<')) {
                last_start = seq.size();
                seq.push_back(parse_token());
            } else if (c == '(') {
                if (++depth_ > kMaxNesting) fail("parentheses nest deeper than " + std::to_string(kMaxNesting));
                ++pos_;
                skip(true);
                const uint32_t id = generated_rule(rule);
                auto alts = parse_alternatives(rule, true);
                g_.rules_[id].alternatives = std::move(alts);
                skip(true);
                if (peek() != ')') fail("expected ')'");
                ++pos_;
                --depth_;
                last_start = seq.size();
                seq.push_back(ref(id));
            } else if (word_char(c)) {
                const size_t at = pos_;
                const std::string name = parse_name();
                last_start = seq.size();
                seq.push_back(ref(rule_id(name, at)));
            } else if (c == '*' || c == '+' || c == '?' || c == '{') {
                if (last_start == SIZE_MAX) fail(std::string("'") + c + "' follows nothing to repeat");
                size_t min = 0, max = SIZE_MAX;
                ++pos_;
                if (c == '+') min = 1;
                else if (c == '?') max = 1;
                else if (c == '{') parse_braces(min, max);
                repeat(seq, last_start, min, max, rule);
                last_start = SIZE_MAX;
            } else {
                fail(std::string("unexpected '") + c + "'");
            }
        }
        seq.push_back(Element{});
        return seq;
    }

    static Element ref(uint32_t id) {
        Element e{ElementKind::RuleRef};
        e.rule = id;
        return e;
    }

    size_t parse_int() {
        const size_t start = pos_;
        size_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            v = v * 10 + static_cast<size_t>(peek() - '0');
            if (v > 100000) fail("repetition count too large");
            ++pos_;
        }
        if (pos_ == start) fail("expected a number");
        return v;
    }

    void parse_braces(size_t& min, size_t& max) {
        skip(false);
        min = parse_int();
        skip(false);
        if (peek() == ',') {
            ++pos_;
            skip(false);
            max = peek() == '}' ? SIZE_MAX : parse_int();
            skip(false);
        } else {
            max = min;
        }
        if (peek() != '}') fail("expected '}'");
        ++pos_;
        if (max < min) fail("repetition maximum below its minimum");
    }

    // seq[from..] repeated min..max times (max SIZE_MAX: unbounded).
    void repeat(Seq& seq, size_t from, size_t min, size_t max, const std::string& rule) {
        const Seq item(seq.begin() + static_cast<ptrdiff_t>(from), seq.end());
        seq.resize(from);
        // copies of the item: bounded, so that "x"{100000}{...}-style sources cannot exhaust memory
        elements_ += item.size() * std::max<size_t>(min, max == SIZE_MAX ? min + 1 : max);
        if (elements_ > kMaxElements) fail("the grammar expands to more than " + std::to_string(kMaxElements) + " elements");
        for (size_t i = 0; i < min; ++i) seq.insert(seq.end(), item.begin(), item.end());
        if (max == SIZE_MAX) {
            // r ::= item r | ""
            const uint32_t r = generated_rule(rule);
            Alternative more = item;
            more.push_back(ref(r));
            more.push_back(Element{});
            g_.rules_[r].alternatives = {std::move(more), Alternative{Element{}}};
            seq.push_back(ref(r));
        } else if (max > min) {
            // nested optionals: o1 ::= item | "", ok ::= item o(k-1) | ""
            uint32_t inner = 0;
            for (size_t k = 1; k <= max - min; ++k) {
                const uint32_t r = generated_rule(rule);
                Alternative alt = item;
                if (k > 1) alt.push_back(ref(inner));
                alt.push_back(Element{});
                g_.rules_[r].alternatives = {std::move(alt), Alternative{Element{}}};
                inner = r;
            }
            seq.push_back(ref(inner));
        }
    }

    uint32_t hex(int digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; ++i) {
            const char c = peek();
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else fail("expected " + std::to_string(digits) + " hexadecimal digits");
            v = v * 16 + static_cast<uint32_t>(d);
            ++pos_;
        }
        return v;
    }

    // One character of a literal or class: UTF-8 or an escape.
    uint32_t parse_char() {
        if (peek() == '\\') {
            ++pos_;
            const char e = peek();
            ++pos_;
            switch (e) {
                case 'x': return hex(2);
                case 'u': return hex(4);
                case 'U': return hex(8);
                case 't': return '\t';
                case 'r': return '\r';
                case 'n': return '\n';
                case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<uint32_t>(e);
                default: pos_ -= 2; fail(std::string("unknown escape '\\") + e + "'");
            }
        }
        const auto [cp, len] = utf8::decode_one(src_.substr(pos_));
        if (len == 0) fail("invalid UTF-8");
        pos_ += len;
        return cp;
    }

    Element parse_class() {
        Element e{ElementKind::Chars};
        if (peek() == '^') {
            e.negated = true;
            ++pos_;
        }
        while (peek() != ']') {
            if (at_end()) fail("unterminated character class");
            const uint32_t lo = parse_char();
            uint32_t hi = lo;
            if (peek() == '-' && peek(1) != ']' && pos_ + 1 < src_.size()) {
                ++pos_;
                hi = parse_char();
                if (hi < lo) fail("character range's end before its start");
            }
            e.ranges.push_back({lo, hi});
        }
        ++pos_;
        return e;
    }

    // <[123]>, <text>, optionally negated with '!'.
    Element parse_token() {
        Element e{ElementKind::Token};
        if (peek() == '!') {
            e.negated = true;
            ++pos_;
        }
        ++pos_;  // '<'
        if (peek() == '[') {
            ++pos_;
            const size_t v = parse_int();
            if (v > INT32_MAX) fail("token id too large");
            e.token = static_cast<int32_t>(v);
            if (peek() != ']' || peek(1) != '>') fail("expected ']>' after the token id");
            pos_ += 2;
            return e;
        }
        const size_t start = pos_;
        while (!at_end() && peek() != '>' && peek() != '\n') ++pos_;
        if (peek() != '>') fail("unterminated token '<...>'");
        e.token_text = "<" + std::string(src_.substr(start, pos_ - start)) + ">";
        ++pos_;
        return e;
    }

    // A rule that can reach itself without consuming anything would make the matcher loop forever.
    void check_left_recursion() const {
        const auto& rules = g_.rules_;
        std::vector<bool> nullable(rules.size(), false);
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t r = 0; r < rules.size(); ++r) {
                if (nullable[r]) continue;
                for (const auto& alt : rules[r].alternatives) {
                    bool all = true;
                    for (const auto& e : alt) {
                        if (e.kind == ElementKind::End) break;
                        if (e.kind != ElementKind::RuleRef || !nullable[e.rule]) {
                            all = false;
                            break;
                        }
                    }
                    if (all) {
                        nullable[r] = changed = true;
                        break;
                    }
                }
            }
        }
        // edges to the rules that can come first; a cycle among them is left recursion. Kahn's algorithm
        // (no recursion, so a chain of 100k rules cannot overflow the stack): rules left over lie on a cycle.
        std::vector<std::vector<uint32_t>> first(rules.size()), before(rules.size());
        std::vector<size_t> indegree(rules.size(), 0);
        for (size_t r = 0; r < rules.size(); ++r) {
            for (const auto& alt : rules[r].alternatives) {
                for (const auto& e : alt) {
                    if (e.kind != ElementKind::RuleRef) break;
                    first[r].push_back(e.rule);
                    before[e.rule].push_back(static_cast<uint32_t>(r));
                    ++indegree[e.rule];
                    if (!nullable[e.rule]) break;
                }
            }
        }
        std::vector<uint32_t> ready;
        for (size_t r = 0; r < rules.size(); ++r) {
            if (indegree[r] == 0) ready.push_back(static_cast<uint32_t>(r));
        }
        size_t done = 0;
        while (!ready.empty()) {
            const uint32_t r = ready.back();
            ready.pop_back();
            ++done;
            for (uint32_t next : first[r]) {
                if (--indegree[next] == 0) ready.push_back(next);
            }
        }
        if (done == rules.size()) return;
        // a rule on a cycle: each left-over rule is reached from another left-over one, so walking back
        // along those edges must come round
        std::vector<bool> seen(rules.size(), false);
        uint32_t r = 0;
        while (indegree[r] == 0) ++r;
        while (!seen[r]) {
            seen[r] = true;
            for (uint32_t prev : before[r]) {
                if (indegree[prev] > 0) {
                    r = prev;
                    break;
                }
            }
        }
        throw Error("grammar: rule '" + base_name(rules[r].name) + "' is left-recursive (it can reach itself before "
                    "matching any character)");
    }

    // Generated rules are named "<rule>_<n>": errors name the rule the user wrote.
    std::string base_name(const std::string& name) const {
        const size_t us = name.rfind('_');
        if (us != std::string::npos && ids_.contains(name.substr(0, us))) return name.substr(0, us);
        return name;
    }

    std::string_view src_;
    size_t pos_ = 0;
    Grammar g_;
    std::map<std::string, uint32_t> ids_;
    std::vector<bool> defined_;
    std::vector<size_t> first_use_;
    int generated_ = 0;
    int depth_ = 0;
    size_t elements_ = 0;
    static constexpr int kMaxNesting = 100;
    static constexpr size_t kMaxElements = 4'000'000;
};

Grammar Grammar::parse(std::string_view source) { return Parser(source).run(); }

bool Element::matches(uint32_t cp) const {
    bool in = false;
    for (const auto& r : ranges) in |= cp >= r.lo && cp <= r.hi;
    return in != negated;
}

bool Element::matches_any(uint32_t lo, uint32_t hi) const {
    if (!negated) {
        for (const auto& r : ranges) {
            if (r.lo <= hi && r.hi >= lo) return true;
        }
        return false;
    }
    // some point of [lo, hi] outside every range: walk up from lo past the ranges covering it
    for (uint32_t cp = lo;;) {
        bool moved = false;
        for (const auto& r : ranges) {
            if (cp >= r.lo && cp <= r.hi) {
                if (r.hi >= hi) return false;
                cp = r.hi + 1;
                moved = true;
            }
        }
        if (!moved) return true;
    }
}

}  // namespace grammar
