#include "jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "jinja/template.h"

namespace jinja {

const Value* CallArgs::get(size_t index, std::string_view name) const {
    for (const auto& [k, v] : keyword) {
        if (k == name) return &v;
    }
    return index < positional.size() ? &positional[index] : nullptr;
}

const Value* Value::Object::find(std::string_view key) const {
    for (const auto& [k, v] : items) {
        if (k == key) return &v;
    }
    return nullptr;
}

void Value::Object::set(const std::string& key, Value v) {
    for (auto& [k, old] : items) {
        if (k == key) {
            old = std::move(v);
            return;
        }
    }
    items.emplace_back(key, std::move(v));
}

Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}

Value::Value(bool b) : kind_(Kind::Bool), b_(b) {}
Value::Value(int64_t v) : kind_(Kind::Int), i_(v) {}
Value::Value(double v) : kind_(Kind::Float), d_(v) {}
Value::Value(std::string s) : kind_(Kind::String), s_(std::make_shared<const std::string>(std::move(s))) {}

Value Value::array(Array items) {
    Value v;
    v.kind_ = Kind::Array;
    v.a_ = std::make_shared<Array>(std::move(items));
    return v;
}

Value Value::object() { return object(Object{}); }

Value Value::object(Object o) {
    Value v;
    v.kind_ = Kind::Object;
    v.o_ = std::make_shared<Object>(std::move(o));
    return v;
}

Value Value::function(Function f) {
    Value v;
    v.kind_ = Kind::Function;
    v.f_ = std::make_shared<const Function>(std::move(f));
    return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return none();
        case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: return Value(static_cast<int64_t>(j.get<uint64_t>()));
        case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            Array a;
            for (const auto& e : j) a.push_back(from_json(e));
            return array(std::move(a));
        }
        case nlohmann::ordered_json::value_t::object: {
            Object o;
            for (const auto& [k, e] : j.items()) o.items.emplace_back(k, from_json(e));
            return object(std::move(o));
        }
        default: return Value();
    }
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return b_;
        case Kind::Int: return i_ != 0;
        case Kind::Float: return d_ != 0;
        case Kind::String: return !s_->empty();
        case Kind::Array: return !a_->empty();
        case Kind::Object: return !o_->items.empty();
        case Kind::Function: return true;
    }
    return false;
}

std::string float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
    // shortest round-trip digits in scientific form, then laid out as Python's repr does:
    // positional for exponents -4..15, scientific otherwise
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    const bool negative = sci[0] == '-';
    if (negative) sci.erase(0, 1);
    const size_t e = sci.find('e');
    const int exp = std::atoi(sci.c_str() + e + 1);
    std::string digits = sci.substr(0, e);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    std::string out;
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
        } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
            out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
        } else {
            out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
        }
    } else {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char e_buf[16];
        std::snprintf(e_buf, sizeof e_buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        out += e_buf;
    }
    return negative ? "-" + out : out;
}

namespace {

std::string repr_string(const std::string& s) {
    // Python picks double quotes only when the text has a single quote and no double quote
    const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, q);
    for (unsigned char c : s) {
        if (c == q || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + q;
}

void json_string(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

// Nesting limit for printing and tojson: a namespace can hold itself, lists can be nested without end.
constexpr int kMaxNesting = 100;

void json_value(std::string& out, const Value& v, int indent, bool sort_keys, int level) {
    if (level > kMaxNesting) throw Error("value nested more than " + std::to_string(kMaxNesting) + " deep");
    const auto newline = [&](int lvl) {
        out += '\n';
        out += std::string(static_cast<size_t>(indent * lvl), ' ');
    };
    switch (v.kind()) {
        case Value::Kind::Undefined:
        case Value::Kind::Function: throw Error("Object of type " + std::string(v.type_name()) + " is not JSON serializable");
        case Value::Kind::None: out += "null"; return;
        case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Value::Kind::Int: out += std::to_string(v.as_int()); return;
        case Value::Kind::Float: {
            const double d = v.as_double();
            out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : float_repr(d);
            return;
        }
        case Value::Kind::String: json_string(out, v.str()); return;
        case Value::Kind::Array: {
            if (v.items().empty()) {
                out += "[]";
                return;
            }
            out += '[';
            bool first = true;
            for (const Value& e : v.items()) {
                if (!first) out += indent >= 0 ? "," : ", ";
                first = false;
                if (indent >= 0) newline(level + 1);
                json_value(out, e, indent, sort_keys, level + 1);
            }
            if (indent >= 0) newline(level);
            out += ']';
            return;
        }
        case Value::Kind::Object: {
            if (v.obj().items.empty()) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<std::string, Value>*> items;
            for (const auto& kv : v.obj().items) items.push_back(&kv);
            if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
            out += '{';
            bool first = true;
            for (const auto* kv : items) {
                if (!first) out += indent >= 0 ? "," : ", ";
                first = false;
                if (indent >= 0) newline(level + 1);
                json_string(out, kv->first);
                out += ": ";
                json_value(out, kv->second, indent, sort_keys, level + 1);
            }
            if (indent >= 0) newline(level);
            out += '}';
            return;
        }
    }
}

}  // namespace

std::string Value::repr() const {
    if (kind_ == Kind::String) return repr_string(*s_);
    return to_string();
}

std::string Value::to_string() const {
    thread_local int depth = 0;
    struct Nest {
        Nest() {
            if (++depth > kMaxNesting) {
                depth = 0;
                throw Error("value nested more than " + std::to_string(kMaxNesting) + " deep");
            }
        }
        ~Nest() { depth = depth > 0 ? depth - 1 : 0; }
    } nest;
    switch (kind_) {
        case Kind::Undefined: return "";
        case Kind::None: return "None";
        case Kind::Bool: return b_ ? "True" : "False";
        case Kind::Int: return std::to_string(i_);
        case Kind::Float: return float_repr(d_);
        case Kind::String: return *s_;
        case Kind::Array: {
            std::string out = "[";
            for (size_t i = 0; i < a_->size(); ++i) out += (i ? ", " : "") + (*a_)[i].repr();
            return out + "]";
        }
        case Kind::Object: {
            std::string out = "{";
            for (size_t i = 0; i < o_->items.size(); ++i) {
                out += (i ? ", " : "") + repr_string(o_->items[i].first) + ": " + o_->items[i].second.repr();
            }
            return out + "}";
        }
        case Kind::Function: return "<function>";
    }
    return "";
}

std::string Value::to_json(int indent, bool sort_keys) const {
    std::string out;
    json_value(out, *this, indent, sort_keys, 0);
    return out;
}

bool Value::equals(const Value& o) const {
    const auto numeric = [](const Value& v) {
        return v.kind_ == Kind::Bool || v.kind_ == Kind::Int || v.kind_ == Kind::Float;
    };
    if (numeric(*this) && numeric(o)) {
        const auto num = [](const Value& v) { return v.kind_ == Kind::Bool ? (v.b_ ? 1.0 : 0.0) : v.as_double(); };
        if (kind_ != Kind::Float && o.kind_ != Kind::Float) {
            const auto as_i = [](const Value& v) { return v.kind_ == Kind::Bool ? (v.b_ ? 1 : 0) : v.i_; };
            return as_i(*this) == as_i(o);
        }
        return num(*this) == num(o);
    }
    if (kind_ != o.kind_) return false;
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return *s_ == *o.s_;
        case Kind::Array:
            if (a_->size() != o.a_->size()) return false;
            for (size_t i = 0; i < a_->size(); ++i) {
                if (!(*a_)[i].equals((*o.a_)[i])) return false;
            }
            return true;
        case Kind::Object:
            if (o_->items.size() != o.o_->items.size()) return false;
            for (const auto& [k, v] : o_->items) {
                const Value* other = o.o_->find(k);
                if (!other || !v.equals(*other)) return false;
            }
            return true;
        case Kind::Function: return f_ == o.f_;
        default: return false;
    }
}

const char* Value::type_name() const {
    switch (kind_) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::Array: return "list";
        case Kind::Object: return "dict";
        case Kind::Function: return "function";
    }
    return "?";
}

}  // namespace jinja
