#include "convert/json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

namespace convert::json {

std::string_view type_name(Type t) {
    switch (t) {
        case Type::Null: return "null";
        case Type::Bool: return "boolean";
        case Type::Number: return "number";
        case Type::String: return "string";
        case Type::Array: return "array";
        case Type::Object: return "object";
    }
    return "?";
}

namespace {

[[noreturn]] void wrong_type(const Value& v, Type wanted) {
    throw Error("JSON value is " + std::string(type_name(v.type())) + ", expected " +
                std::string(type_name(wanted)));
}

}  // namespace

bool Value::is_integer() const {
    const auto* n = std::get_if<detail::Number>(&v_);
    return n && n->exact;
}

bool Value::as_bool() const {
    if (!is_bool()) wrong_type(*this, Type::Bool);
    return std::get<bool>(v_);
}

double Value::as_double() const {
    if (!is_number()) wrong_type(*this, Type::Number);
    return std::get<detail::Number>(v_).value;
}

int64_t Value::as_int() const {
    if (!is_number()) wrong_type(*this, Type::Number);
    const auto& n = std::get<detail::Number>(v_);
    if (!n.exact) {
        std::ostringstream s;
        s << "JSON number " << n.value << " is not an integer";
        throw Error(s.str());
    }
    return n.integer;
}

const std::string& Value::as_string() const {
    if (!is_string()) wrong_type(*this, Type::String);
    return std::get<std::string>(v_);
}

const std::vector<Value>& Value::items() const {
    if (!is_array()) wrong_type(*this, Type::Array);
    return std::get<std::vector<Value>>(v_);
}

const Value& Value::at(size_t i) const {
    const auto& a = items();
    if (i >= a.size())
        throw Error("JSON array index " + std::to_string(i) + " out of range (size " + std::to_string(a.size()) +
                    ")");
    return a[i];
}

const std::vector<Member>& Value::entries() const {
    if (!is_object()) wrong_type(*this, Type::Object);
    return std::get<detail::Object>(v_).members;
}

const Value* Value::find(std::string_view key) const {
    if (!is_object()) wrong_type(*this, Type::Object);
    const auto& o = std::get<detail::Object>(v_);
    auto it = std::lower_bound(o.sorted.begin(), o.sorted.end(), key,
                               [&](uint32_t i, std::string_view k) { return o.members[i].key < k; });
    if (it == o.sorted.end() || o.members[*it].key != key) return nullptr;
    return &o.members[*it].value;
}

const Value& Value::operator[](std::string_view key) const {
    const Value* v = find(key);
    if (!v) throw Error("JSON object has no key \"" + std::string(key) + "\"");
    return *v;
}

size_t Value::size() const {
    if (is_array()) return std::get<std::vector<Value>>(v_).size();
    if (is_object()) return std::get<detail::Object>(v_).members.size();
    throw Error("JSON value is " + std::string(type_name(type())) + ", which has no size");
}

// Builds our Value tree from nlohmann-json's SAX events: nlohmann does the lexing and validation (RFC 8259,
// UTF-8, surrogates; iteratively, so hostile nesting cannot exhaust the stack), this keeps what the
// converter relies on: key order, an exact int64 beside the double, the depth limit, duplicate keys
// refused, and errors as "SOURCE:LINE:COLUMN: WHAT".
class Builder final : public nlohmann::json_sax<nlohmann::json> {
public:
    Builder(std::string_view text, const std::string& source) : text_(text), source_(source) {}

    Value take() { return std::move(root_); }

    bool null() override { return put(Value{}); }
    bool boolean(bool b) override {
        Value v;
        v.v_ = b;
        return put(std::move(v));
    }
    bool number_integer(number_integer_t i) override {
        return put(number({static_cast<double>(i), static_cast<int64_t>(i), true}));
    }
    bool number_unsigned(number_unsigned_t u) override {
        const bool fits = u <= static_cast<uint64_t>(INT64_MAX);
        return put(number({static_cast<double>(u), fits ? static_cast<int64_t>(u) : 0, fits}));
    }
    bool number_float(number_float_t d, const string_t&) override {
        // 1e3 and 2.0 are integers too; the bound keeps the cast defined.
        detail::Number n{d, 0, false};
        if (std::nearbyint(d) == d && std::fabs(d) < 9.2e18) {
            n.integer = static_cast<int64_t>(d);
            n.exact = true;
        }
        return put(number(n));
    }
    bool string(string_t& s) override {
        Value v;
        v.v_ = std::move(s);
        return put(std::move(v));
    }
    bool binary(binary_t&) override { return false; }  // text JSON has no binary values

    bool start_object(std::size_t) override { return open(detail::Object{}); }
    bool key(string_t& k) override {
        stack_.back().key = std::move(k);
        return true;
    }
    bool end_object() override {
        auto& o = std::get<detail::Object>(stack_.back().value.v_);
        o.sorted.resize(o.members.size());
        for (uint32_t i = 0; i < o.sorted.size(); ++i) o.sorted[i] = i;
        std::stable_sort(o.sorted.begin(), o.sorted.end(),
                         [&](uint32_t a, uint32_t b) { return o.members[a].key < o.members[b].key; });
        for (size_t i = 1; i < o.sorted.size(); ++i) {
            const std::string& k = o.members[o.sorted[i]].key;
            if (k == o.members[o.sorted[i - 1]].key) throw Error(source_ + ": duplicate key \"" + k + "\"");
        }
        return close();
    }
    bool start_array(std::size_t) override { return open(std::vector<Value>{}); }
    bool end_array() override { return close(); }

    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
        // nlohmann's position counts the bytes read, the offending one included.
        fail_at(position == 0 ? 0 : position - 1, describe(ex));
    }

private:
    struct Frame {
        Value value;
        std::string key;  // objects: the key of the next member
    };

    static Value number(const detail::Number& n) {
        Value v;
        v.v_ = n;
        return v;
    }

    template <class Container>
    bool open(Container c) {
        if (stack_.size() >= kMaxDepth) throw Error(source_ + ": nesting deeper than " + std::to_string(kMaxDepth));
        Frame f;
        f.value.v_ = std::move(c);
        stack_.push_back(std::move(f));
        return true;
    }

    bool close() {
        Value v = std::move(stack_.back().value);
        stack_.pop_back();
        return put(std::move(v));
    }

    bool put(Value v) {
        if (stack_.empty()) {
            root_ = std::move(v);
        } else if (auto* a = std::get_if<std::vector<Value>>(&stack_.back().value.v_)) {
            a->push_back(std::move(v));
        } else {
            auto& o = std::get<detail::Object>(stack_.back().value.v_);
            o.members.push_back(Member{std::move(stack_.back().key), std::move(v)});
        }
        return true;
    }

    // nlohmann's message without its "[json.exception...] parse error at line L, column C: " prefix
    // and "; last read: ..." suffix, since ours names the source and position.
    static std::string describe(const nlohmann::detail::exception& ex) {
        if (ex.id == 406) return "number out of range";
        std::string m = ex.what();
        if (const size_t bracket = m.find("] "); bracket != std::string::npos) m.erase(0, bracket + 2);
        if (m.rfind("parse error", 0) == 0) {
            if (const size_t colon = m.find(": "); colon != std::string::npos) m.erase(0, colon + 2);
        }
        // What was last read may be a stray byte of broken UTF-8; the position already points at it.
        if (const size_t last = m.find("; last read: "); last != std::string::npos) m.erase(last);
        return m;
    }

    [[noreturn]] void fail_at(size_t at, const std::string& what) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < at && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        throw Error(source_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
    }

    std::string_view text_;
    const std::string& source_;
    std::vector<Frame> stack_;
    Value root_;
};

Value parse(std::string_view text, const std::string& source) {
    Builder b(text, source);
    nlohmann::json::sax_parse(text.begin(), text.end(), &b, nlohmann::json::input_format_t::json, true);
    return b.take();
}

Value parse_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open file");
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw Error(path + ": read error");
    return parse(buf.str(), path);
}

}  // namespace convert::json
