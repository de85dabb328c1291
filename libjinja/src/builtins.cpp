#include "builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "jinja/template.h"

namespace jinja::detail {

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(what); }

const std::string kWhitespace = " \t\n\r\f\v";

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
    const std::string set = chars && chars->is_string() ? chars->str() : kWhitespace;
    size_t b = 0, e = s.size();
    if (left) {
        while (b < e && set.find(s[b]) != std::string::npos) ++b;
    }
    if (right) {
        while (e > b && set.find(s[e - 1]) != std::string::npos) --e;
    }
    return s.substr(b, e - b);
}

std::string ascii_case(std::string s, bool upper) {
    for (char& c : s) c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string capitalize(const std::string& s) {
    std::string out = ascii_case(s, false);
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

std::string title(const std::string& s) {
    std::string out = s;
    bool in_word = false;
    for (char& c : out) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c));
        if (alpha) c = static_cast<char>(in_word ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
        in_word = alpha;
    }
    return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
    std::string out;
    if (from.empty()) {  // Python inserts `to` between every character
        const auto cps = code_points(s);
        int64_t n = 0;
        for (const auto& c : cps) {
            if (count < 0 || n++ < count) out += to;
            out += c;
        }
        if (count < 0 || n < count) out += to;
        return out;
    }
    size_t at = 0;
    int64_t n = 0;
    while (count < 0 || n < count) {
        const size_t found = s.find(from, at);
        if (found == std::string::npos) break;
        out += s.substr(at, found - at) + to;
        at = found + from.size();
        ++n;
    }
    return out + s.substr(at);
}

Value split(const std::string& s, const Value* sep, int64_t maxsplit) {
    Value::Array parts;
    if (!sep || sep->is_none()) {
        size_t i = 0;
        while (true) {
            while (i < s.size() && kWhitespace.find(s[i]) != std::string::npos) ++i;
            if (i >= s.size()) break;
            if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
                parts.emplace_back(strip(s.substr(i), nullptr, false, true));
                break;
            }
            size_t j = i;
            while (j < s.size() && kWhitespace.find(s[j]) == std::string::npos) ++j;
            parts.emplace_back(s.substr(i, j - i));
            i = j;
        }
        return Value::array(std::move(parts));
    }
    if (!sep->is_string() || sep->str().empty()) fail("split: empty separator");
    const std::string& d = sep->str();
    size_t at = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
        const size_t found = s.find(d, at);
        if (found == std::string::npos) break;
        parts.emplace_back(s.substr(at, found - at));
        at = found + d.size();
    }
    parts.emplace_back(s.substr(at));
    return Value::array(std::move(parts));
}

int64_t int_arg(const CallArgs& args, size_t index, const char* name, int64_t def) {
    const Value* v = args.get(index, name);
    if (!v || v->is_none()) return def;
    if (v->kind() == Value::Kind::Int || v->kind() == Value::Kind::Bool) return v->kind() == Value::Kind::Bool ? v->as_bool() : v->as_int();
    fail(std::string(name) + " must be an integer");
}

bool bool_arg(const CallArgs& args, size_t index, const char* name, bool def) {
    const Value* v = args.get(index, name);
    return v ? v->truthy() : def;
}

}  // namespace

int compare(const Value& a, const Value& b) {
    if ((a.is_number() || a.kind() == Value::Kind::Bool) && (b.is_number() || b.kind() == Value::Kind::Bool)) {
        const double x = a.kind() == Value::Kind::Bool ? a.as_bool() : a.as_double();
        const double y = b.kind() == Value::Kind::Bool ? b.as_bool() : b.as_double();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) return a.str().compare(b.str()) < 0 ? -1 : a.str() == b.str() ? 0 : 1;
    if (a.is_array() && b.is_array()) {
        const auto& x = a.items();
        const auto& y = b.items();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (const int c = compare(x[i], y[i])) return c;
        }
        return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
    fail(std::string("'<' not supported between instances of '") + a.type_name() + "' and '" + b.type_name() + "'");
}

namespace {

// The positional arguments after the first `skip`, for select("test", arg...).
CallArgs rest_args(const CallArgs& args, size_t skip) {
    CallArgs r;
    for (size_t i = skip; i < args.positional.size(); ++i) r.positional.push_back(args.positional[i]);
    r.keyword = args.keyword;
    return r;
}

Value select(const Value& input, const CallArgs& args, bool keep, bool by_attribute) {
    Value::Array out;
    size_t skip = 0;
    std::string attribute;
    if (by_attribute) {
        const Value* a = args.get(0, "attribute");
        if (!a || !a->is_string()) fail("selectattr needs an attribute name");
        attribute = a->str();
        skip = 1;
    }
    const Value* test = args.positional.size() > skip ? &args.positional[skip] : nullptr;
    const CallArgs test_args = rest_args(args, skip + 1);
    for (const Value& item : iterate(input)) {
        const Value v = by_attribute ? get_attr(item, attribute) : item;
        const bool pass = test ? call_test(test->to_string(), v, test_args) : v.truthy();
        if (pass == keep) out.push_back(item);
    }
    return Value::array(std::move(out));
}

Value sorted(const Value& input, const CallArgs& args) {
    std::vector<Value> items = iterate(input);
    const bool reverse = bool_arg(args, 0, "reverse", false);
    const bool case_sensitive = bool_arg(args, 1, "case_sensitive", false);
    const Value* attribute = args.get(2, "attribute");
    const auto key = [&](const Value& v) {
        Value k = attribute && attribute->is_string() ? get_attr(v, attribute->str()) : v;
        if (!case_sensitive && k.is_string()) return Value(ascii_case(k.str(), false));
        return k;
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
        return reverse ? compare(key(b), key(a)) < 0 : compare(key(a), key(b)) < 0;
    });
    return Value::array(std::move(items));
}

std::string indent(const std::string& s, const CallArgs& args) {
    const Value* w = args.get(0, "width");
    const std::string pad = w && w->is_string() ? w->str() : std::string(static_cast<size_t>(int_arg(args, 0, "width", 4)), ' ');
    const bool first = bool_arg(args, 1, "first", false), blank = bool_arg(args, 2, "blank", false);
    std::string out;
    size_t start = 0;
    bool first_line = true;
    while (start <= s.size()) {
        size_t end = s.find('\n', start);
        const bool last = end == std::string::npos;
        if (last) end = s.size();
        const std::string line = s.substr(start, end - start);
        if ((!first_line || first) && (blank || !line.empty())) out += pad;
        out += line;
        if (last) break;
        out += '\n';
        start = end + 1;
        first_line = false;
    }
    return out;
}

Value number(const Value& input, bool to_float, const CallArgs& args) {
    const Value* def = args.get(0, "default");
    const Value fallback = def ? *def : to_float ? Value(0.0) : Value(static_cast<int64_t>(0));
    if (input.kind() == Value::Kind::Bool) return to_float ? Value(input.as_bool() ? 1.0 : 0.0) : Value(static_cast<int64_t>(input.as_bool()));
    if (input.is_number()) return to_float ? Value(input.as_double()) : Value(input.as_int());
    if (!input.is_string()) return fallback;
    try {
        size_t used = 0;
        const std::string t = strip(input.str(), nullptr, true, true);
        if (to_float) {
            const double d = std::stod(t, &used);
            return used == t.size() ? Value(d) : fallback;
        }
        const long long i = std::stoll(t, &used);
        return used == t.size() ? Value(static_cast<int64_t>(i)) : fallback;
    } catch (const std::exception&) {
        return fallback;
    }
}

}  // namespace

std::vector<std::string> code_points(const std::string& s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        n = std::min(n, s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

std::vector<Value> iterate(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return {};
        case Value::Kind::Array: return v.items();
        case Value::Kind::Object: {
            std::vector<Value> keys;
            for (const auto& [k, _] : v.obj().items) keys.emplace_back(k);
            return keys;
        }
        case Value::Kind::String: {
            std::vector<Value> chars;
            for (auto& c : code_points(v.str())) chars.emplace_back(std::move(c));
            return chars;
        }
        default: fail(std::string("'") + v.type_name() + "' object is not iterable");
    }
}

Value get_attr(const Value& obj, const std::string& name) {
    if (obj.is_undefined()) fail("undefined value has no attribute '" + name + "'");
    if (obj.is_object()) {
        if (const Value* v = obj.obj().find(name)) return *v;
    }
    return Value();
}

Value get_item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) fail("undefined value has no item " + key.repr());
    if (obj.is_object()) {
        if (!key.is_string()) return Value();
        if (const Value* v = obj.obj().find(key.str())) return *v;
        return Value();
    }
    if ((obj.is_array() || obj.is_string()) && (key.kind() == Value::Kind::Int)) {
        if (obj.is_array()) {
            const auto n = static_cast<int64_t>(obj.items().size());
            int64_t i = key.as_int();
            if (i < 0) i += n;
            return i >= 0 && i < n ? obj.items()[static_cast<size_t>(i)] : Value();
        }
        const auto cps = code_points(obj.str());
        const auto n = static_cast<int64_t>(cps.size());
        int64_t i = key.as_int();
        if (i < 0) i += n;
        return i >= 0 && i < n ? Value(cps[static_cast<size_t>(i)]) : Value();
    }
    if (key.is_string()) return get_attr(obj, key.str());
    return Value();
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
    if (!obj.is_array() && !obj.is_string()) fail(std::string("'") + obj.type_name() + "' object is not subscriptable");
    std::vector<Value> items;
    if (obj.is_array()) {
        items = obj.items();
    } else {
        for (auto& c : code_points(obj.str())) items.emplace_back(std::move(c));
    }
    const auto n = static_cast<int64_t>(items.size());
    const int64_t st = step.is_undefined() || step.is_none() ? 1 : step.as_int();
    if (st == 0) fail("slice step cannot be zero");
    // Python's slice.indices()
    const auto bound = [&](const Value& v, int64_t def) {
        if (v.is_undefined() || v.is_none()) return def;
        int64_t i = v.as_int();
        if (i < 0) i += n;
        if (st > 0) return std::clamp<int64_t>(i, 0, n);
        return std::clamp<int64_t>(i, -1, n - 1);
    };
    const int64_t b = bound(start, st > 0 ? 0 : n - 1), e = bound(stop, st > 0 ? n : -1);
    std::vector<Value> out;
    for (int64_t i = b; st > 0 ? i < e : i > e; i += st) out.push_back(items[static_cast<size_t>(i)]);
    if (obj.is_array()) return Value::array(std::move(out));
    std::string s;
    for (const Value& c : out) s += c.str();
    return Value(s);
}

bool has_method(const Value& obj, const std::string& name) {
    static const char* const str_methods[] = {"strip", "lstrip", "rstrip", "split", "startswith", "endswith",
                                              "upper", "lower", "title", "capitalize", "replace", "find",
                                              "count", "join", "splitlines", "isdigit", "isspace"};
    static const char* const dict_methods[] = {"items", "keys", "values", "get"};
    if (obj.is_string()) return std::find(std::begin(str_methods), std::end(str_methods), name) != std::end(str_methods);
    if (obj.is_object() && !obj.obj().is_namespace) {
        return std::find(std::begin(dict_methods), std::end(dict_methods), name) != std::end(dict_methods);
    }
    return false;
}

Value call_method(const Value& obj, const std::string& name, const CallArgs& args) {
    if (obj.is_string()) {
        const std::string& s = obj.str();
        const Value* a0 = args.get(0, "");
        if (name == "strip") return Value(strip(s, a0, true, true));
        if (name == "lstrip") return Value(strip(s, a0, true, false));
        if (name == "rstrip") return Value(strip(s, a0, false, true));
        if (name == "split") return split(s, args.get(0, "sep"), int_arg(args, 1, "maxsplit", -1));
        if (name == "upper" || name == "lower") return Value(ascii_case(s, name == "upper"));
        if (name == "title") return Value(title(s));
        if (name == "capitalize") return Value(capitalize(s));
        if (name == "isdigit") return Value(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }));
        if (name == "isspace") return Value(!s.empty() && strip(s, nullptr, true, true).empty());
        if (name == "startswith" || name == "endswith") {
            if (!a0) fail(name + " needs an argument");
            std::vector<Value> options = a0->is_array() ? a0->items() : std::vector<Value>{*a0};
            for (const Value& o : options) {
                if (!o.is_string()) fail(name + ": expected a string");
                if (name == "startswith" ? s.starts_with(o.str()) : s.ends_with(o.str())) return Value(true);
            }
            return Value(false);
        }
        if (name == "replace") {
            const Value* from = args.get(0, "old");
            const Value* to = args.get(1, "new");
            if (!from || !to || !from->is_string() || !to->is_string()) fail("replace needs two strings");
            return Value(replace(s, from->str(), to->str(), int_arg(args, 2, "count", -1)));
        }
        if (name == "find" || name == "count") {
            if (!a0 || !a0->is_string()) fail(name + " needs a string");
            if (name == "find") {
                const size_t at = s.find(a0->str());
                return Value(at == std::string::npos ? static_cast<int64_t>(-1) : static_cast<int64_t>(code_points(s.substr(0, at)).size()));
            }
            int64_t n = 0;
            if (a0->str().empty()) return Value(static_cast<int64_t>(code_points(s).size() + 1));
            for (size_t at = s.find(a0->str()); at != std::string::npos; at = s.find(a0->str(), at + a0->str().size())) ++n;
            return Value(n);
        }
        if (name == "join") {
            std::string out;
            bool first = true;
            for (const Value& v : iterate(a0 ? *a0 : Value())) {
                if (!first) out += s;
                first = false;
                out += v.to_string();
            }
            return Value(out);
        }
        if (name == "splitlines") {
            Value::Array lines;
            size_t start = 0;
            while (start < s.size()) {
                size_t end = s.find('\n', start);
                if (end == std::string::npos) end = s.size();
                lines.emplace_back(s.substr(start, end - start));
                start = end + 1;
            }
            return Value::array(std::move(lines));
        }
    } else if (obj.is_object()) {
        const auto& items = obj.obj().items;
        if (name == "items") {
            Value::Array out;
            for (const auto& [k, v] : items) out.push_back(Value::array({Value(k), v}));
            return Value::array(std::move(out));
        }
        if (name == "keys" || name == "values") {
            Value::Array out;
            for (const auto& [k, v] : items) out.push_back(name == "keys" ? Value(k) : v);
            return Value::array(std::move(out));
        }
        if (name == "get") {
            const Value* key = args.get(0, "key");
            const Value* def = args.get(1, "default");
            if (key && key->is_string()) {
                if (const Value* v = obj.obj().find(key->str())) return *v;
            }
            return def ? *def : Value::none();
        }
    }
    fail(std::string("'") + obj.type_name() + "' object has no method '" + name + "'");
}

bool call_test(const std::string& name, const Value& v, const CallArgs& args) {
    using K = Value::Kind;
    const Value* arg = args.get(0, "");
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number() || v.kind() == K::Bool;
    if (name == "integer") return v.kind() == K::Int;
    if (name == "float") return v.kind() == K::Float;
    if (name == "boolean") return v.kind() == K::Bool;
    if (name == "true") return v.kind() == K::Bool && v.as_bool();
    if (name == "false") return v.kind() == K::Bool && !v.as_bool();
    if (name == "mapping") return v.is_object();
    if (name == "iterable" || name == "sequence") return v.is_array() || v.is_object() || v.is_string();
    if (name == "callable") return v.is_callable();
    if (name == "lower" || name == "upper") return v.is_string() && v.str() == ascii_case(v.str(), name == "upper");
    if (name == "even" || name == "odd") {
        if (v.kind() != K::Int) fail("test '" + name + "' needs an integer");
        return (v.as_int() % 2 == 0) == (name == "even");
    }
    if (!arg) fail("test '" + name + "' needs an argument");
    if (name == "divisibleby") return arg->as_int() != 0 && v.as_int() % arg->as_int() == 0;
    if (name == "equalto" || name == "eq" || name == "==") return v.equals(*arg);
    if (name == "ne" || name == "!=") return !v.equals(*arg);
    if (name == "sameas") return v.kind() == arg->kind() && (v.is_none() || v.is_undefined() || v.equals(*arg));
    if (name == "lt" || name == "<") return compare(v, *arg) < 0;
    if (name == "le" || name == "<=") return compare(v, *arg) <= 0;
    if (name == "gt" || name == ">") return compare(v, *arg) > 0;
    if (name == "ge" || name == ">=") return compare(v, *arg) >= 0;
    if (name == "in") {
        if (arg->is_string()) return v.is_string() && arg->str().find(v.str()) != std::string::npos;
        for (const Value& e : iterate(*arg)) {
            if (e.equals(v)) return true;
        }
        return false;
    }
    fail("unknown test '" + name + "'");
}

Value call_filter(const std::string& name, const Value& input, const CallArgs& args) {
    const Value* a0 = args.get(0, "");
    if (name == "length" || name == "count") {
        if (input.is_string()) return Value(static_cast<int64_t>(code_points(input.str()).size()));
        if (input.is_array()) return Value(static_cast<int64_t>(input.items().size()));
        if (input.is_object()) return Value(static_cast<int64_t>(input.obj().items.size()));
        if (input.is_undefined()) return Value(static_cast<int64_t>(0));
        fail(std::string("object of type '") + input.type_name() + "' has no len()");
    }
    if (name == "tojson") {
        const Value* ind = args.get(1, "indent");
        const int indent = ind && !ind->is_none() ? static_cast<int>(ind->as_int()) : -1;
        return Value(input.to_json(indent, bool_arg(args, 3, "sort_keys", false)));
    }
    if (name == "string") return Value(input.to_string());
    if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
        if (name == "safe") return input;
        std::string out;
        for (char c : input.to_string()) {
            switch (c) {
                case '&': out += "&amp;"; break;
                case '<': out += "&lt;"; break;
                case '>': out += "&gt;"; break;
                case '"': out += "&#34;"; break;
                case '\'': out += "&#39;"; break;
                default: out += c;
            }
        }
        return Value(out);
    }
    if (name == "trim") return Value(strip(input.to_string(), args.get(0, "chars"), true, true));
    if (name == "upper" || name == "lower") return Value(ascii_case(input.to_string(), name == "upper"));
    if (name == "capitalize") return Value(capitalize(input.to_string()));
    if (name == "title") return Value(title(input.to_string()));
    if (name == "replace") {
        const Value* from = args.get(0, "old");
        const Value* to = args.get(1, "new");
        if (!from || !to) fail("replace needs two arguments");
        return Value(replace(input.to_string(), from->to_string(), to->to_string(), int_arg(args, 2, "count", -1)));
    }
    if (name == "indent") return Value(indent(input.to_string(), args));
    if (name == "default" || name == "d") {
        const bool boolean = bool_arg(args, 1, "boolean", false);
        if (input.is_undefined() || (boolean && !input.truthy())) return a0 ? *a0 : Value("");
        return input;
    }
    if (name == "join") {
        const Value* attribute = args.get(1, "attribute");
        const Value* sep = args.get(0, "d");
        std::string out;
        bool first = true;
        for (const Value& v : iterate(input)) {
            if (!first && sep) out += sep->to_string();
            first = false;
            out += (attribute ? get_attr(v, attribute->to_string()) : v).to_string();
        }
        return Value(out);
    }
    if (name == "first" || name == "last") {
        const auto items = iterate(input);
        if (items.empty()) return Value();
        return name == "first" ? items.front() : items.back();
    }
    if (name == "list") return Value::array(iterate(input));
    if (name == "items" || name == "dictsort") {
        if (input.is_undefined()) return Value::array();
        if (!input.is_object()) fail(name + " needs a dict");
        Value items = call_method(input, "items", {});
        if (name == "dictsort") {
            std::stable_sort(items.items().begin(), items.items().end(),
                             [](const Value& a, const Value& b) { return compare(a.items()[0], b.items()[0]) < 0; });
        }
        return items;
    }
    if (name == "reverse") {
        if (input.is_string()) {
            auto cps = code_points(input.str());
            std::string out;
            for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
            return Value(out);
        }
        auto items = iterate(input);
        std::reverse(items.begin(), items.end());
        return Value::array(std::move(items));
    }
    if (name == "sort") return sorted(input, args);
    if (name == "unique") {
        Value::Array out;
        for (const Value& v : iterate(input)) {
            if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return o.equals(v); })) out.push_back(v);
        }
        return Value::array(std::move(out));
    }
    if (name == "select" || name == "reject") return select(input, args, name == "select", false);
    if (name == "selectattr" || name == "rejectattr") return select(input, args, name == "selectattr", true);
    if (name == "map") {
        Value::Array out;
        const Value* attribute = args.get(99, "attribute");
        for (const Value& v : iterate(input)) {
            if (attribute) {
                Value got = get_attr(v, attribute->to_string());
                const Value* def = args.get(99, "default");
                out.push_back(got.is_undefined() && def ? *def : got);
            } else {
                if (!a0) fail("map needs a filter or attribute=");
                out.push_back(call_filter(a0->to_string(), v, rest_args(args, 1)));
            }
        }
        return Value::array(std::move(out));
    }
    if (name == "int" || name == "float") return number(input, name == "float", args);
    if (name == "abs") {
        if (input.kind() == Value::Kind::Int) return Value(input.as_int() < 0 ? -input.as_int() : input.as_int());
        if (input.is_number()) return Value(std::fabs(input.as_double()));
        fail("abs needs a number");
    }
    if (name == "round") {
        const int64_t precision = int_arg(args, 0, "precision", 0);
        const Value* method = args.get(1, "method");
        const double scale = std::pow(10.0, static_cast<double>(precision));
        const double x = input.as_double() * scale;
        const std::string m = method ? method->to_string() : "common";
        const double r = m == "floor" ? std::floor(x) : m == "ceil" ? std::ceil(x) : std::round(x);
        return Value(r / scale);
    }
    if (name == "sum" || name == "min" || name == "max") {
        const auto items = iterate(input);
        if (name == "sum") {
            Value total(static_cast<int64_t>(0));
            for (const Value& v : items) {
                total = (total.kind() == Value::Kind::Int && v.kind() == Value::Kind::Int) ? Value(total.as_int() + v.as_int())
                                                                                          : Value(total.as_double() + v.as_double());
            }
            return total;
        }
        if (items.empty()) return Value();
        Value best = items.front();
        for (const Value& v : items) {
            if ((name == "min") == (compare(v, best) < 0) && compare(v, best) != 0) best = v;
        }
        return best;
    }
    if (name == "wordcount") return Value(static_cast<int64_t>(split(input.to_string(), nullptr, -1).items().size()));
    fail("unknown filter '" + name + "'");
}

}  // namespace jinja::detail
