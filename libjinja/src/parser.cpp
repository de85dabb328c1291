// Recursive-descent parser with Jinja2's precedence, loosest first: conditional expression (a if c
// else b), or, and, not, comparisons (==, !=, <, >, <=, >=, in, not in), + and -, ~, *, / // %, **,
// unary minus, then a primary with its postfixes (.attr, [index or slice], (call)) followed by filters
// (|f) and tests (is [not] t).
#include <string>

#include "jinja/template.h"
#include "syntax.h"

namespace jinja::detail {

namespace {

using Type = Token::Type;

class Parser {
public:
    explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

    Body parse_template() {
        std::string end;
        Body body = parse_body({}, end);
        if (!end.empty()) fail("unexpected '" + end + "'");
        return body;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error("line " + std::to_string(peek().line) + ": " + what);
    }
    const Token& peek(size_t ahead = 0) const {
        const size_t i = std::min(pos_ + ahead, t_.size() - 1);
        return t_[i];
    }
    const Token& next() {
        const Token& t = peek();
        if (pos_ < t_.size() - 1) ++pos_;
        return t;
    }
    bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).type == Type::Op && peek(ahead).text == op; }
    bool is_name(const char* name, size_t ahead = 0) const {
        return peek(ahead).type == Type::Name && peek(ahead).text == name;
    }
    bool accept_op(const char* op) {
        if (!is_op(op)) return false;
        next();
        return true;
    }
    bool accept_name(const char* name) {
        if (!is_name(name)) return false;
        next();
        return true;
    }
    void expect_op(const char* op) {
        if (!accept_op(op)) fail(std::string("expected '") + op + "'");
    }
    std::string expect_name() {
        if (peek().type != Type::Name) fail("expected a name");
        return next().text;
    }
    void expect_block_end() {
        if (peek().type != Type::BlockEnd) fail("expected '%}'");
        next();
    }

    ExprPtr make(Expr::Kind kind, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = line;
        return e;
    }

    // Statements up to a block tag whose keyword is in `ends` (returned in `end`, the tag's keyword
    // consumed but not the rest of the tag).
    Body parse_body(const std::vector<std::string>& ends, std::string& end) {
        Body body;
        while (true) {
            const Token& t = peek();
            if (t.type == Type::End) {
                if (!ends.empty()) fail("missing '{% " + ends.back() + " %}'");
                end.clear();
                return body;
            }
            if (t.type == Type::Text) {
                auto n = std::make_unique<Node>();
                n->kind = Node::Kind::Text;
                n->text = t.text;
                n->line = t.line;
                body.push_back(std::move(n));
                next();
            } else if (t.type == Type::VarBegin) {
                next();
                auto n = std::make_unique<Node>();
                n->kind = Node::Kind::Output;
                n->line = t.line;
                n->expr = parse_expression();
                if (peek().type != Type::VarEnd) fail("expected '}}'");
                next();
                body.push_back(std::move(n));
            } else if (t.type == Type::BlockBegin) {
                next();
                const std::string keyword = expect_name();
                for (const auto& e : ends) {
                    if (keyword == e) {
                        end = keyword;
                        return body;
                    }
                }
                body.push_back(parse_statement(keyword, t.line));
            } else {
                fail("unexpected token");
            }
        }
    }

    NodePtr parse_statement(const std::string& keyword, int line) {
        Nest nest(*this);
        auto n = std::make_unique<Node>();
        n->line = line;
        std::string end;
        if (keyword == "if") {
            n->kind = Node::Kind::If;
            n->conditions.push_back(parse_expression());
            expect_block_end();
            while (true) {
                n->branches.push_back(parse_body({"elif", "else", "endif"}, end));
                if (end == "elif") {
                    n->conditions.push_back(parse_expression());
                    expect_block_end();
                } else if (end == "else") {
                    expect_block_end();
                    n->branches.push_back(parse_body({"endif"}, end));
                    expect_block_end();
                    return n;
                } else {
                    expect_block_end();
                    return n;
                }
            }
        }
        if (keyword == "for") {
            n->kind = Node::Kind::For;
            do {
                n->targets.push_back(expect_name());
            } while (accept_op(","));
            if (!accept_name("in")) fail("expected 'in'");
            n->expr = parse_or(false);
            if (accept_name("if")) n->filter = parse_or(true);
            if (accept_name("recursive")) fail("recursive loops are not supported");
            expect_block_end();
            n->body = parse_body({"else", "endfor"}, end);
            if (end == "else") {
                expect_block_end();
                n->else_body = parse_body({"endfor"}, end);
            }
            expect_block_end();
            return n;
        }
        if (keyword == "set") {
            const std::string first = expect_name();
            n->targets.push_back(first);
            if (accept_op(".")) {
                n->attribute_target = true;
                n->targets.push_back(expect_name());
            } else {
                while (accept_op(",")) n->targets.push_back(expect_name());
            }
            if (peek().type == Type::BlockEnd && !n->attribute_target && n->targets.size() == 1) {
                next();
                n->kind = Node::Kind::SetBlock;
                n->text = first;
                n->body = parse_body({"endset"}, end);
                expect_block_end();
                return n;
            }
            n->kind = Node::Kind::Set;
            expect_op("=");
            n->expr = parse_expression();
            expect_block_end();
            return n;
        }
        if (keyword == "macro") {
            n->kind = Node::Kind::Macro;
            n->text = expect_name();
            expect_op("(");
            while (!accept_op(")")) {
                std::string param = expect_name();
                ExprPtr def;
                if (accept_op("=")) def = parse_expression();
                n->params.emplace_back(std::move(param), std::move(def));
                if (!is_op(")")) expect_op(",");
            }
            expect_block_end();
            n->body = parse_body({"endmacro"}, end);
            expect_block_end();
            return n;
        }
        if (keyword == "break" || keyword == "continue") {
            n->kind = keyword == "break" ? Node::Kind::Break : Node::Kind::Continue;
            expect_block_end();
            return n;
        }
        if (keyword == "generation") {  // transformers' assistant-mask marker: rendered as its body
            n->kind = Node::Kind::Block;
            expect_block_end();
            n->body = parse_body({"endgeneration"}, end);
            expect_block_end();
            return n;
        }
        fail("unsupported tag '" + keyword + "'");
    }

    ExprPtr parse_expression() {
        ExprPtr e = parse_or(true);
        // a bare tuple: {% set a, b = 1, 2 %} or {{ x, y }}
        if (is_op(",") && peek(1).type != Type::BlockEnd && peek(1).type != Type::VarEnd) {
            auto t = make(Expr::Kind::Tuple, e->line);
            t->args.push_back(std::move(e));
            while (accept_op(",")) {
                if (peek().type == Type::BlockEnd || peek().type == Type::VarEnd) break;
                t->args.push_back(parse_or(true));
            }
            return t;
        }
        return e;
    }

    // Nesting limit: a template is untrusted input, and "((((..." must not overflow the stack.
    struct Nest {
        Parser& p;
        explicit Nest(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxDepth) p.fail("nested more than " + std::to_string(kMaxDepth) + " deep");
        }
        ~Nest() { --p.depth_; }
    };
    static constexpr int kMaxDepth = 200;
    int depth_ = 0;

    // `with_condition`: a trailing "if ... else ..." belongs to this expression (not in a for's iterable).
    ExprPtr parse_or(bool with_condition) {
        Nest nest(*this);
        ExprPtr e = parse_or_only();
        if (with_condition && is_name("if")) {
            const int line = next().line;
            auto c = make(Expr::Kind::Cond, line);
            c->args.push_back(std::move(e));
            c->args.push_back(parse_or_only());
            c->args.push_back(accept_name("else") ? parse_or(true) : nullptr);
            return c;
        }
        return e;
    }

    ExprPtr parse_or_only() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            const int line = next().line;
            auto o = make(Expr::Kind::Or, line);
            o->args.push_back(std::move(e));
            o->args.push_back(parse_and());
            e = std::move(o);
        }
        return e;
    }

    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            const int line = next().line;
            auto a = make(Expr::Kind::And, line);
            a->args.push_back(std::move(e));
            a->args.push_back(parse_not());
            e = std::move(a);
        }
        return e;
    }

    ExprPtr parse_not() {
        Nest nest(*this);
        if (is_name("not")) {
            const int line = next().line;
            auto n = make(Expr::Kind::Not, line);
            n->args.push_back(parse_not());
            return n;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        ExprPtr e = parse_math1();
        while (true) {
            std::string op;
            if (peek().type == Type::Op &&
                (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))) {
                op = next().text;
            } else if (is_name("in")) {
                next();
                op = "in";
            } else if (is_name("not") && is_name("in", 1)) {
                next();
                next();
                op = "not in";
            } else {
                return e;
            }
            auto b = make(Expr::Kind::Binary, e->line);
            b->name = op;
            b->args.push_back(std::move(e));
            b->args.push_back(parse_math1());
            e = std::move(b);
        }
    }

    ExprPtr binary(std::string op, ExprPtr l, ExprPtr r) {
        auto b = make(Expr::Kind::Binary, l->line);
        b->name = std::move(op);
        b->args.push_back(std::move(l));
        b->args.push_back(std::move(r));
        return b;
    }

    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            std::string op = next().text;
            e = binary(op, std::move(e), parse_concat());
        }
        return e;
    }

    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (accept_op("~")) e = binary("~", std::move(e), parse_math2());
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            std::string op = next().text;
            e = binary(op, std::move(e), parse_pow());
        }
        return e;
    }

    ExprPtr parse_pow() {
        ExprPtr e = parse_unary();
        while (accept_op("**")) e = binary("**", std::move(e), parse_unary());
        return e;
    }

    // As Jinja2: "-x|abs" is (-x)|abs, the operand of a sign taking no filters of its own.
    ExprPtr parse_unary(bool with_filters = true) {
        Nest nest(*this);
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            const Token& t = next();
            ExprPtr operand = parse_unary(false);
            if (t.text == "+") {
                e = std::move(operand);
            } else {
                e = make(Expr::Kind::Neg, t.line);
                e->args.push_back(std::move(operand));
            }
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        return with_filters ? parse_filters(std::move(e)) : std::move(e);
    }

    ExprPtr parse_primary() {
        const Token& t = next();
        switch (t.type) {
            case Type::String: {
                std::string s = t.text;
                while (peek().type == Type::String) s += next().text;  // adjacent literals concatenate
                auto e = make(Expr::Kind::Literal, t.line);
                e->literal = Value(s);
                return e;
            }
            case Type::Int: {
                auto e = make(Expr::Kind::Literal, t.line);
                e->literal = Value(static_cast<int64_t>(std::stoll(t.text)));
                return e;
            }
            case Type::Float: {
                auto e = make(Expr::Kind::Literal, t.line);
                e->literal = Value(std::stod(t.text));
                return e;
            }
            case Type::Name: {
                auto e = make(Expr::Kind::Literal, t.line);
                if (t.text == "true" || t.text == "True") e->literal = Value(true);
                else if (t.text == "false" || t.text == "False") e->literal = Value(false);
                else if (t.text == "none" || t.text == "None") e->literal = Value::none();
                else {
                    e->kind = Expr::Kind::Name;
                    e->name = t.text;
                }
                return e;
            }
            case Type::Op:
                if (t.text == "(") {
                    if (accept_op(")")) return make(Expr::Kind::Tuple, t.line);
                    ExprPtr e = parse_or(true);
                    if (is_op(",")) {
                        auto tuple = make(Expr::Kind::Tuple, t.line);
                        tuple->args.push_back(std::move(e));
                        while (accept_op(",")) {
                            if (is_op(")")) break;
                            tuple->args.push_back(parse_or(true));
                        }
                        e = std::move(tuple);
                    }
                    expect_op(")");
                    return e;
                }
                if (t.text == "[") {
                    auto list = make(Expr::Kind::List, t.line);
                    while (!accept_op("]")) {
                        list->args.push_back(parse_or(true));
                        if (!is_op("]")) expect_op(",");
                    }
                    return list;
                }
                if (t.text == "{") {
                    auto dict = make(Expr::Kind::Dict, t.line);
                    while (!accept_op("}")) {
                        dict->args.push_back(parse_or(true));
                        expect_op(":");
                        dict->args.push_back(parse_or(true));
                        if (!is_op("}")) expect_op(",");
                    }
                    return dict;
                }
                break;
            default: break;
        }
        throw Error("line " + std::to_string(t.line) + ": unexpected '" + (t.text.empty() ? "end of tag" : t.text) + "'");
    }

    void parse_call_args(Expr& call) {
        // after "(": positional arguments, then name=value ones
        while (!accept_op(")")) {
            if (peek().type == Type::Name && is_op("=", 1)) {
                std::string name = next().text;
                next();
                call.kwargs.emplace_back(std::move(name), parse_or(true));
            } else {
                call.args.push_back(parse_or(true));
            }
            if (!is_op(")")) expect_op(",");
        }
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            if (accept_op(".")) {
                auto a = make(Expr::Kind::Attr, e->line);
                if (peek().type == Type::Int) a->name = next().text;  // foo.0
                else a->name = expect_name();
                a->args.push_back(std::move(e));
                e = std::move(a);
            } else if (accept_op("[")) {
                e = parse_subscript(std::move(e));
            } else if (accept_op("(")) {
                auto c = make(Expr::Kind::Call, e->line);
                c->args.push_back(std::move(e));
                parse_call_args(*c);
                e = std::move(c);
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj) {
        ExprPtr parts[3];
        int part = 0;
        bool slice = false;
        while (!accept_op("]")) {
            if (accept_op(":")) {
                slice = true;
                if (++part > 2) fail("too many ':' in a slice");
                continue;
            }
            if (parts[part]) fail("expected ']'");
            parts[part] = parse_or(true);
        }
        if (!slice) {
            if (!parts[0]) fail("empty subscript");
            auto item = make(Expr::Kind::Item, obj->line);
            item->args.push_back(std::move(obj));
            item->args.push_back(std::move(parts[0]));
            return item;
        }
        auto s = make(Expr::Kind::Slice, obj->line);
        s->args.push_back(std::move(obj));
        for (auto& p : parts) s->args.push_back(std::move(p));
        return s;
    }

    // Whether the token after a test's name starts its one unparenthesized argument
    // ("is divisibleby 3", "is sameas false").
    bool starts_argument() const {
        const Token& t = peek();
        if (t.type == Type::String || t.type == Type::Int || t.type == Type::Float) return true;
        if (t.type == Type::Op) return t.text == "[" || t.text == "{" || t.text == "-";
        if (t.type != Type::Name) return false;
        for (const char* stop : {"and", "or", "else", "if", "in", "not", "is", "recursive"}) {
            if (t.text == stop) return false;
        }
        return true;
    }

    ExprPtr parse_filters(ExprPtr e) {
        while (true) {
            if (accept_op("|")) {
                auto f = make(Expr::Kind::Filter, e->line);
                f->name = expect_name();
                while (accept_op(".")) f->name += "." + expect_name();
                f->args.push_back(std::move(e));
                if (accept_op("(")) parse_call_args(*f);
                e = std::move(f);
            } else if (is_name("is")) {
                next();
                auto t = make(Expr::Kind::Test, e->line);
                t->negated = accept_name("not");
                t->name = expect_name();
                t->args.push_back(std::move(e));
                if (accept_op("(")) {
                    parse_call_args(*t);
                } else if (starts_argument()) {
                    t->args.push_back(parse_postfix(parse_primary()));
                }
                e = std::move(t);
            } else {
                return e;
            }
        }
    }

    const std::vector<Token>& t_;
    size_t pos_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens) { return Parser(tokens).parse_template(); }

}  // namespace jinja::detail
