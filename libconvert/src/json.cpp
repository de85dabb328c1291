#include "convert/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
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

// Recursive descent over the whole text; positions are byte offsets turned into line/column only
// when an error is reported.
class Parser {
public:
    Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

    Value document() {
        skip_ws();
        Value v;
        value(v, 0);
        skip_ws();
        if (pos_ != text_.size()) fail("unexpected data after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

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

    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    void skip_ws() {
        while (!at_end()) {
            char c = text_[pos_];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
            ++pos_;
        }
    }

    void expect_literal(std::string_view lit) {
        if (text_.substr(pos_, lit.size()) != lit) fail("invalid literal (expected " + std::string(lit) + ")");
        pos_ += lit.size();
    }

    void value(Value& out, size_t depth) {
        if (at_end()) fail("unexpected end of input, expected a value");
        switch (text_[pos_]) {
            case '{': object(out, depth + 1); return;
            case '[': array(out, depth + 1); return;
            case '"': out.v_ = string(); return;
            case 't': expect_literal("true"); out.v_ = true; return;
            case 'f': expect_literal("false"); out.v_ = false; return;
            case 'n': expect_literal("null"); out.v_ = std::monostate{}; return;
            default:
                if (text_[pos_] == '-' || (text_[pos_] >= '0' && text_[pos_] <= '9')) {
                    out.v_ = number();
                    return;
                }
                fail(std::string("unexpected character '") + text_[pos_] + "', expected a value");
        }
    }

    void check_depth(size_t depth) const {
        if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }

    void object(Value& out, size_t depth) {
        check_depth(depth);
        const size_t start = pos_;
        ++pos_;  // '{'
        detail::Object obj;
        skip_ws();
        if (peek() == '}') {
            ++pos_;
        } else {
            for (;;) {
                skip_ws();
                if (peek() != '"') fail(at_end() ? "unexpected end of input in object" : "expected a string key");
                Member m;
                m.key = string();
                skip_ws();
                if (peek() != ':') fail("expected ':' after object key");
                ++pos_;
                skip_ws();
                value(m.value, depth);
                obj.members.push_back(std::move(m));
                skip_ws();
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                if (peek() == '}') {
                    ++pos_;
                    break;
                }
                fail(at_end() ? "unexpected end of input in object" : "expected ',' or '}' in object");
            }
        }
        if (obj.members.size() > UINT32_MAX) fail_at(start, "object too large");
        obj.sorted.resize(obj.members.size());
        for (uint32_t i = 0; i < obj.sorted.size(); ++i) obj.sorted[i] = i;
        std::stable_sort(obj.sorted.begin(), obj.sorted.end(),
                         [&](uint32_t a, uint32_t b) { return obj.members[a].key < obj.members[b].key; });
        // Duplicate keys make lookups ambiguous; a well-formed checkpoint never has them.
        for (size_t i = 1; i < obj.sorted.size(); ++i)
            if (obj.members[obj.sorted[i]].key == obj.members[obj.sorted[i - 1]].key)
                fail_at(start, "duplicate key \"" + obj.members[obj.sorted[i]].key + "\" in object");
        out.v_ = std::move(obj);
    }

    void array(Value& out, size_t depth) {
        check_depth(depth);
        ++pos_;  // '['
        std::vector<Value> items;
        skip_ws();
        if (peek() == ']') {
            ++pos_;
        } else {
            for (;;) {
                skip_ws();
                items.emplace_back();
                value(items.back(), depth);
                skip_ws();
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                if (peek() == ']') {
                    ++pos_;
                    break;
                }
                fail(at_end() ? "unexpected end of input in array" : "expected ',' or ']' in array");
            }
        }
        out.v_ = std::move(items);
    }

    static int hex_digit(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    uint32_t hex4() {
        if (text_.size() - pos_ < 4) fail("truncated \\u escape");
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            int d = hex_digit(text_[pos_ + i]);
            if (d < 0) fail("invalid hex digit in \\u escape");
            v = v << 4 | static_cast<uint32_t>(d);
        }
        pos_ += 4;
        return v;
    }

    static void append_utf8(std::string& s, uint32_t cp) {
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            s += static_cast<char>(0xC0 | cp >> 6);
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += static_cast<char>(0xE0 | cp >> 12);
            s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | cp >> 18);
            s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
            s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // Length of the well-formed UTF-8 sequence at pos_ (overlongs, surrogates and > U+10FFFF
    // rejected), or 0.
    size_t utf8_length() const {
        const auto b = [&](size_t i) { return static_cast<unsigned char>(text_[pos_ + i]); };
        const size_t left = text_.size() - pos_;
        const unsigned char c = b(0);
        const auto cont = [&](size_t i) { return i < left && (b(i) & 0xC0) == 0x80; };
        if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
        if (c >= 0xE0 && c <= 0xEF) {
            if (!cont(1) || !cont(2)) return 0;
            if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
            if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
            return 3;
        }
        if (c >= 0xF0 && c <= 0xF4) {
            if (!cont(1) || !cont(2) || !cont(3)) return 0;
            if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
            if (c == 0xF4 && b(1) >= 0x90) return 0;  // beyond U+10FFFF
            return 4;
        }
        return 0;
    }

    std::string string() {
        ++pos_;  // opening quote
        std::string s;
        for (;;) {
            // Copy the run of plain ASCII in one go: most of a tokenizer vocabulary is that.
            size_t run = pos_;
            while (run < text_.size()) {
                unsigned char c = static_cast<unsigned char>(text_[run]);
                if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
                ++run;
            }
            s.append(text_.data() + pos_, run - pos_);
            pos_ = run;
            if (at_end()) fail("unterminated string");
            const unsigned char c = static_cast<unsigned char>(text_[pos_]);
            if (c == '"') {
                ++pos_;
                return s;
            }
            if (c < 0x20) fail("unescaped control character in string");
            if (c >= 0x80) {
                size_t n = utf8_length();
                if (n == 0) fail("invalid UTF-8 in string");
                s.append(text_.data() + pos_, n);
                pos_ += n;
                continue;
            }
            // Backslash escape.
            ++pos_;
            if (at_end()) fail("unterminated escape in string");
            const char e = text_[pos_++];
            switch (e) {
                case '"': s += '"'; break;
                case '\\': s += '\\'; break;
                case '/': s += '/'; break;
                case 'b': s += '\b'; break;
                case 'f': s += '\f'; break;
                case 'n': s += '\n'; break;
                case 'r': s += '\r'; break;
                case 't': s += '\t'; break;
                case 'u': {
                    const size_t esc = pos_ - 2;
                    uint32_t cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(esc, "unpaired low surrogate in \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (text_.substr(pos_, 2) != "\\u") fail_at(esc, "unpaired high surrogate in \\u escape");
                        pos_ += 2;
                        uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail_at(esc, "unpaired high surrogate in \\u escape");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    append_utf8(s, cp);
                    break;
                }
                default: fail_at(pos_ - 2, std::string("invalid escape '\\") + e + "' in string");
            }
        }
    }

    detail::Number number() {
        const size_t start = pos_;
        const auto digits = [&] {
            size_t n = 0;
            while (peek() >= '0' && peek() <= '9') ++pos_, ++n;
            return n;
        };
        if (peek() == '-') ++pos_;
        const bool zero_int = peek() == '0';
        size_t int_digits = 1;
        if (zero_int) {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            int_digits = digits();
        } else {
            fail("invalid number");
        }
        bool integral = true;
        size_t frac_zeros = 0;  // leading zeros of the fraction, to tell underflow from overflow
        if (peek() == '.') {
            integral = false;
            ++pos_;
            while (peek() == '0') ++pos_, ++frac_zeros;
            if (frac_zeros == 0 && !(peek() >= '0' && peek() <= '9'))
                fail("expected digits after the decimal point");
            digits();
        }
        int64_t exponent = 0;
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            ++pos_;
            bool negative = false;
            if (peek() == '+' || peek() == '-') negative = text_[pos_++] == '-';
            if (!(peek() >= '0' && peek() <= '9')) fail("expected digits in exponent");
            while (peek() >= '0' && peek() <= '9') {
                exponent = std::min<int64_t>(exponent * 10 + (text_[pos_] - '0'), 1'000'000'000);
                ++pos_;
            }
            if (negative) exponent = -exponent;
        }
        const char* first = text_.data() + start;
        const char* last = text_.data() + pos_;
        detail::Number n;
        auto r = std::from_chars(first, last, n.value);
        if (r.ec == std::errc::result_out_of_range) {
            // Too small for a double reads as zero, as in every JSON reader; too large is an error
            // since infinity is not JSON data. The decimal magnitude tells which happened.
            const int64_t magnitude = (zero_int ? -static_cast<int64_t>(frac_zeros) : static_cast<int64_t>(int_digits)) +
                                      exponent;
            if (magnitude > 0) fail_at(start, "number out of range");
            n.value = text_[start] == '-' ? -0.0 : 0.0;
        } else if (r.ec != std::errc() || r.ptr != last) {
            fail_at(start, "invalid number");
        }
        if (integral) {
            auto ri = std::from_chars(first, last, n.integer);
            n.exact = ri.ec == std::errc() && ri.ptr == last;
        } else if (std::nearbyint(n.value) == n.value && std::fabs(n.value) < 9.2e18) {
            n.integer = static_cast<int64_t>(n.value);
            n.exact = true;
        }
        return n;
    }

    std::string_view text_;
    const std::string& source_;
    size_t pos_ = 0;
};

Value parse(std::string_view text, const std::string& source) { return Parser(text, source).document(); }

Value parse_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open file");
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw Error(path + ": read error");
    return parse(buf.str(), path);
}

}  // namespace convert::json
