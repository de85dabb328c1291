// Evaluation of the syntax tree. Scopes follow Jinja2: a for loop's body has its own (a variable set
// inside is gone after the loop, which is why templates use namespace()), if has none, a macro sees
// the template's top-level variables and its arguments.
#include <chrono>
#include <cmath>

#include "builtins.h"
#include "jinja/template.h"
#include "syntax.h"

namespace jinja {

struct Template::Impl {
    detail::Body body;
};

namespace detail {

namespace {

using Scope = std::shared_ptr<Value::Object>;

// raise_exception(message): passed up unchanged, without the line prefixes other errors get.
struct Raised : Error {
    using Error::Error;
};

enum class Flow { Normal, Break, Continue };

class Renderer {
public:
    Renderer(const Value& context, const RenderOptions& options) : options_(options) {
        auto root = std::make_shared<Value::Object>();
        if (context.is_object()) *root = context.obj();
        root->is_namespace = false;
        scopes_.push_back(root);
        install_globals();
    }

    std::string run(const Body& body) {
        render(body);
        return std::move(out_);
    }

private:
    [[noreturn]] static void fail(int line, const std::string& what) {
        throw Error("line " + std::to_string(line) + ": " + what);
    }

    void install_globals() {
        auto& g = *scopes_.front();
        const auto define = [&](const char* name, Value::Function f) {
            if (!g.find(name)) g.set(name, Value::function(std::move(f)));  // the caller's own win
        };
        define("raise_exception", [](const CallArgs& a) -> Value {
            const Value* m = a.get(0, "message");
            throw Raised(m ? m->to_string() : "raise_exception");
        });
        define("strftime_now", [this](const CallArgs& a) -> Value {
            const Value* fmt = a.get(0, "format");
            if (!fmt || !fmt->is_string()) throw Error("strftime_now needs a format");
            std::tm tm{};
            if (options_.now) {
                tm = options_.now();
            } else {
                const std::time_t t = std::time(nullptr);
                localtime_r(&t, &tm);
            }
            char buf[256];
            const size_t n = std::strftime(buf, sizeof buf, fmt->str().c_str(), &tm);
            return Value(std::string(buf, n));
        });
        define("namespace", [](const CallArgs& a) -> Value {
            Value::Object o;
            o.is_namespace = true;
            for (const Value& p : a.positional) {
                if (p.is_object()) {
                    for (const auto& [k, v] : p.obj().items) o.set(k, v);
                }
            }
            for (const auto& [k, v] : a.keyword) o.set(k, v);
            return Value::object(std::move(o));
        });
        define("dict", [](const CallArgs& a) -> Value {
            Value::Object o;
            for (const auto& [k, v] : a.keyword) o.set(k, v);
            return Value::object(std::move(o));
        });
        define("range", [](const CallArgs& a) -> Value {
            int64_t start = 0, stop = 0, step = 1;
            if (a.positional.size() == 1) {
                stop = a.positional[0].as_int();
            } else if (a.positional.size() >= 2) {
                start = a.positional[0].as_int();
                stop = a.positional[1].as_int();
                if (a.positional.size() > 2) step = a.positional[2].as_int();
            }
            if (step == 0) throw Error("range() step must not be zero");
            if ((stop - start) / step > 1000000) throw Error("range() too long");
            Value::Array out;
            for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.emplace_back(i);
            return Value::array(std::move(out));
        });
    }

    Value lookup(const std::string& name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            if (const Value* v = (*it)->find(name)) return *v;
        }
        return Value();
    }

    void assign(const std::string& name, Value v) { scopes_.back()->set(name, std::move(v)); }

    Flow render(const Body& body) {
        for (const auto& n : body) {
            const Flow f = render(*n);
            if (f != Flow::Normal) return f;
        }
        return Flow::Normal;
    }

    Flow render(const Node& n) {
        try {
            return render_node(n);
        } catch (const Raised&) {
            throw;
        } catch (const Error& err) {
            const std::string what = err.what();
            if (what.starts_with("line ")) throw;
            throw Error("line " + std::to_string(n.line) + ": " + what);
        }
    }

    Flow render_node(const Node& n) {
        switch (n.kind) {
            case Node::Kind::Text: out_ += n.text; break;
            case Node::Kind::Output: out_ += eval(*n.expr).to_string(); break;
            case Node::Kind::If:
                for (size_t i = 0; i < n.branches.size(); ++i) {
                    if (i >= n.conditions.size() || eval(*n.conditions[i]).truthy()) return render(n.branches[i]);
                }
                break;
            case Node::Kind::For: render_for(n); break;
            case Node::Kind::Set: render_set(n); break;
            case Node::Kind::SetBlock: {
                std::string saved = std::move(out_);
                out_.clear();
                render(n.body);
                std::string captured = std::move(out_);
                out_ = std::move(saved);
                assign(n.text, Value(captured));
                break;
            }
            case Node::Kind::Macro: define_macro(n); break;
            case Node::Kind::Break: return Flow::Break;
            case Node::Kind::Continue: return Flow::Continue;
            case Node::Kind::Block: return render(n.body);
        }
        return Flow::Normal;
    }

    void bind_targets(const std::vector<std::string>& targets, const Value& v, int line) {
        if (targets.size() == 1) {
            assign(targets[0], v);
            return;
        }
        const std::vector<Value> parts = iterate(v);
        if (parts.size() != targets.size()) {
            fail(line, "cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(targets.size()));
        }
        for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], parts[i]);
    }

    void render_for(const Node& n) {
        const Value seq = eval(*n.expr);
        if (seq.is_none()) fail(n.line, "'NoneType' object is not iterable");
        std::vector<Value> items = iterate(seq);
        if (n.filter) {
            // the filter sees the loop variables; loop.* counts only what passes it
            std::vector<Value> kept;
            scopes_.push_back(std::make_shared<Value::Object>());
            for (const Value& item : items) {
                bind_targets(n.targets, item, n.line);
                if (eval(*n.filter).truthy()) kept.push_back(item);
            }
            scopes_.pop_back();
            items = std::move(kept);
        }
        if (items.empty()) {
            render(n.else_body);
            return;
        }
        scopes_.push_back(std::make_shared<Value::Object>());
        const auto count = static_cast<int64_t>(items.size());
        for (int64_t i = 0; i < count; ++i) {
            Value::Object loop;
            loop.set("index0", Value(i));
            loop.set("index", Value(i + 1));
            loop.set("revindex0", Value(count - 1 - i));
            loop.set("revindex", Value(count - i));
            loop.set("first", Value(i == 0));
            loop.set("last", Value(i == count - 1));
            loop.set("length", Value(count));
            loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
            loop.set("nextitem", i + 1 < count ? items[static_cast<size_t>(i + 1)] : Value());
            loop.set("cycle", Value::function([i](const CallArgs& a) -> Value {
                if (a.positional.empty()) throw Error("loop.cycle needs arguments");
                return a.positional[static_cast<size_t>(i) % a.positional.size()];
            }));
            assign("loop", Value::object(std::move(loop)));
            bind_targets(n.targets, items[static_cast<size_t>(i)], n.line);
            if (render(n.body) == Flow::Break) break;
        }
        scopes_.pop_back();
    }

    void render_set(const Node& n) {
        Value v = eval(*n.expr);
        if (n.attribute_target) {
            const Value ns = lookup(n.targets[0]);
            if (!ns.is_object() || !ns.obj().is_namespace) {
                fail(n.line, "cannot assign attribute on non-namespace object '" + n.targets[0] + "'");
            }
            ns.obj().set(n.targets[1], std::move(v));
            return;
        }
        bind_targets(n.targets, v, n.line);
    }

    void define_macro(const Node& n) {
        const Node* node = &n;
        assign(n.text, Value::function([this, node](const CallArgs& a) -> Value { return call_macro(*node, a); }));
    }

    Value call_macro(const Node& n, const CallArgs& a) {
        // a template is untrusted input (it comes with the model): recursion must end in an error,
        // not a stack overflow
        if (++macro_depth_ > kMaxMacroDepth) {
            --macro_depth_;
            fail(n.line, "macro '" + n.text + "' nested more than " + std::to_string(kMaxMacroDepth) + " deep");
        }
        struct Leave {
            int& depth;
            ~Leave() { --depth; }
        } leave{macro_depth_};
        auto frame = std::make_shared<Value::Object>();
        for (size_t i = 0; i < n.params.size(); ++i) {
            const auto& [name, def] = n.params[i];
            if (const Value* v = a.get(i, name)) frame->set(name, *v);
            else if (def) frame->set(name, eval(*def));
            else frame->set(name, Value());
        }
        if (a.positional.size() > n.params.size()) fail(n.line, "macro '" + n.text + "' takes " + std::to_string(n.params.size()) + " arguments");
        std::vector<Scope> saved_scopes = {scopes_.front(), frame};
        std::swap(saved_scopes, scopes_);
        std::string saved_out = std::move(out_);
        out_.clear();
        try {
            render(n.body);
        } catch (...) {
            std::swap(saved_scopes, scopes_);
            out_ = std::move(saved_out);
            throw;
        }
        std::swap(saved_scopes, scopes_);
        std::string result = std::move(out_);
        out_ = std::move(saved_out);
        return Value(result);
    }

    CallArgs eval_args(const Expr& e, size_t first) {
        CallArgs a;
        for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i]));
        for (const auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, eval(*v));
        return a;
    }

    Value eval(const Expr& e) {
        try {
            return eval_unchecked(e);
        } catch (const Raised&) {
            throw;
        } catch (const Error& err) {
            const std::string what = err.what();
            if (what.starts_with("line ")) throw;
            throw Error("line " + std::to_string(e.line) + ": " + what);
        }
    }

    Value eval_unchecked(const Expr& e) {
        switch (e.kind) {
            case Expr::Kind::Literal: return e.literal;
            case Expr::Kind::Name: return lookup(e.name);
            case Expr::Kind::Attr: return get_attr(eval(*e.args[0]), e.name);
            case Expr::Kind::Item: return get_item(eval(*e.args[0]), eval(*e.args[1]));
            case Expr::Kind::Slice: {
                const auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value(); };
                return get_slice(eval(*e.args[0]), part(1), part(2), part(3));
            }
            case Expr::Kind::Call: return eval_call(e);
            case Expr::Kind::Filter: return call_filter(e.name, eval(*e.args[0]), eval_args(e, 1));
            case Expr::Kind::Test: return Value(call_test(e.name, eval(*e.args[0]), eval_args(e, 1)) != e.negated);
            case Expr::Kind::Not: return Value(!eval(*e.args[0]).truthy());
            case Expr::Kind::Neg: {
                const Value v = eval(*e.args[0]);
                if (v.kind() == Value::Kind::Int) return Value(-v.as_int());
                if (v.kind() == Value::Kind::Float) return Value(-v.as_double());
                throw Error(std::string("bad operand type for unary -: '") + v.type_name() + "'");
            }
            case Expr::Kind::And: {
                Value l = eval(*e.args[0]);
                return l.truthy() ? eval(*e.args[1]) : l;
            }
            case Expr::Kind::Or: {
                Value l = eval(*e.args[0]);
                return l.truthy() ? l : eval(*e.args[1]);
            }
            case Expr::Kind::Binary: return binary(e.name, eval(*e.args[0]), eval(*e.args[1]));
            case Expr::Kind::List:
            case Expr::Kind::Tuple: {
                Value::Array items;
                for (const auto& a : e.args) items.push_back(eval(*a));
                return Value::array(std::move(items));
            }
            case Expr::Kind::Dict: {
                Value::Object o;
                for (size_t i = 0; i + 1 < e.args.size(); i += 2) o.set(eval(*e.args[i]).to_string(), eval(*e.args[i + 1]));
                return Value::object(std::move(o));
            }
            case Expr::Kind::Cond:
                if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
                return e.args[2] ? eval(*e.args[2]) : Value();
        }
        return Value();
    }

    Value eval_call(const Expr& e) {
        const Expr& callee = *e.args[0];
        if (callee.kind == Expr::Kind::Attr) {
            const Value obj = eval(*callee.args[0]);
            if (has_method(obj, callee.name)) return call_method(obj, callee.name, eval_args(e, 1));
            const Value f = get_attr(obj, callee.name);
            if (!f.is_callable()) throw Error("'" + callee.name + "' is not callable");
            return f.fn()(eval_args(e, 1));
        }
        const Value f = eval(callee);
        if (!f.is_callable()) {
            throw Error((callee.kind == Expr::Kind::Name ? "'" + callee.name + "'" : std::string("value")) +
                        (f.is_undefined() ? " is undefined" : " is not callable"));
        }
        return f.fn()(eval_args(e, 1));
    }

    static Value arithmetic(const std::string& op, const Value& l, const Value& r) {
        const bool ints = (l.kind() == Value::Kind::Int || l.kind() == Value::Kind::Bool) &&
                          (r.kind() == Value::Kind::Int || r.kind() == Value::Kind::Bool);
        const auto iv = [](const Value& v) { return v.kind() == Value::Kind::Bool ? static_cast<int64_t>(v.as_bool()) : v.as_int(); };
        const auto dv = [](const Value& v) { return v.kind() == Value::Kind::Bool ? (v.as_bool() ? 1.0 : 0.0) : v.as_double(); };
        if (op == "/") {
            if (dv(r) == 0) throw Error("division by zero");
            return Value(dv(l) / dv(r));
        }
        if (op == "**") return ints && iv(r) >= 0 ? Value(static_cast<int64_t>(std::llround(std::pow(dv(l), dv(r))))) : Value(std::pow(dv(l), dv(r)));
        if (ints) {
            const int64_t a = iv(l), b = iv(r);
            if (op == "+") return Value(a + b);
            if (op == "-") return Value(a - b);
            if (op == "*") return Value(a * b);
            if (b == 0) throw Error("integer division or modulo by zero");
            const int64_t q = a / b - ((a % b != 0) && ((a < 0) != (b < 0)));  // Python floors
            if (op == "//") return Value(q);
            return Value(a - q * b);
        }
        const double a = dv(l), b = dv(r);
        if (op == "+") return Value(a + b);
        if (op == "-") return Value(a - b);
        if (op == "*") return Value(a * b);
        if (b == 0) throw Error("float division by zero");
        if (op == "//") return Value(std::floor(a / b));
        return Value(a - std::floor(a / b) * b);
    }

    Value binary(const std::string& op, const Value& l, const Value& r) {
        if (op == "==") return Value(l.equals(r));
        if (op == "!=") return Value(!l.equals(r));
        if (op == "in" || op == "not in") {
            CallArgs a;
            a.positional.push_back(r);
            return Value(call_test("in", l, a) == (op == "in"));
        }
        if (op == "<" || op == ">" || op == "<=" || op == ">=") {
            CallArgs a;
            a.positional.push_back(r);
            return Value(call_test(op, l, a));
        }
        if (op == "~") return Value(l.to_string() + r.to_string());
        const auto numeric = [](const Value& v) { return v.is_number() || v.kind() == Value::Kind::Bool; };
        if (numeric(l) && numeric(r)) return arithmetic(op, l, r);
        if (op == "+" && l.is_string() && r.is_string()) return Value(l.str() + r.str());
        if (op == "+" && l.is_array() && r.is_array()) {
            Value::Array items = l.items();
            items.insert(items.end(), r.items().begin(), r.items().end());
            return Value::array(std::move(items));
        }
        if (op == "*" && (l.is_string() || r.is_string()) && (l.kind() == Value::Kind::Int || r.kind() == Value::Kind::Int)) {
            const std::string& s = l.is_string() ? l.str() : r.str();
            const int64_t n = l.is_string() ? r.as_int() : l.as_int();
            if (n > 0 && static_cast<double>(n) * static_cast<double>(s.size()) > (1u << 24)) {
                throw Error("string repetition longer than 16 MiB");
            }
            std::string out;
            for (int64_t i = 0; i < n; ++i) out += s;
            return Value(out);
        }
        if (l.is_undefined() || r.is_undefined()) throw Error("undefined value in '" + op + "' operation");
        throw Error("unsupported operand type(s) for " + op + ": '" + l.type_name() + "' and '" + r.type_name() + "'");
    }

    static constexpr int kMaxMacroDepth = 64;
    int macro_depth_ = 0;
    const RenderOptions& options_;
    std::vector<Scope> scopes_;
    std::string out_;
};

}  // namespace

}  // namespace detail

Template::Template(std::string_view source) : impl_(std::make_unique<Impl>()) {
    impl_->body = detail::parse(detail::tokenize(source));
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Value& context, const RenderOptions& options) const {
    return detail::Renderer(context, options).run(impl_->body);
}

}  // namespace jinja
