#include "gguf/metadata.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "gguf/error.h"

namespace gguf {

std::string_view value_type_name(ValueType t) {
    switch (t) {
        case ValueType::U8: return "u8";
        case ValueType::I8: return "i8";
        case ValueType::U16: return "u16";
        case ValueType::I16: return "i16";
        case ValueType::U32: return "u32";
        case ValueType::I32: return "i32";
        case ValueType::F32: return "f32";
        case ValueType::Bool: return "bool";
        case ValueType::String: return "string";
        case ValueType::Array: return "array";
        case ValueType::U64: return "u64";
        case ValueType::I64: return "i64";
        case ValueType::F64: return "f64";
    }
    return "?";
}

bool is_valid_value_type(uint32_t id) { return id <= static_cast<uint32_t>(ValueType::F64); }

uint32_t scalar_size(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::Bool: return 1;
        case ValueType::U16:
        case ValueType::I16: return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32: return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64: return 8;
        case ValueType::String:
        case ValueType::Array: return 0;
    }
    return 0;
}

Value Value::string_array(const std::vector<std::string>& items) {
    Array a{ValueType::String, {}};
    a.items.reserve(items.size());
    for (const auto& s : items) a.items.push_back(Value::string(s));
    return Value::array(std::move(a));
}

Value Value::f32_array(const std::vector<float>& items) {
    Array a{ValueType::F32, {}};
    a.items.reserve(items.size());
    for (float f : items) a.items.push_back(Value::f32(f));
    return Value::array(std::move(a));
}

Value Value::i32_array(const std::vector<int32_t>& items) {
    Array a{ValueType::I32, {}};
    a.items.reserve(items.size());
    for (int32_t v : items) a.items.push_back(Value::i32(v));
    return Value::array(std::move(a));
}

bool Value::is_integer() const {
    switch (type_) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::U16:
        case ValueType::I16:
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::U64:
        case ValueType::I64: return true;
        default: return false;
    }
}

static Error wrong_type(ValueType have, const char* want) {
    return Error("value of type " + std::string(value_type_name(have)) + " where " + want + " was expected");
}

uint64_t Value::as_u64() const {
    if (const auto* u = std::get_if<uint64_t>(&v_)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v_)) {
        if (*i < 0) throw Error("negative value " + std::to_string(*i) + " where an unsigned integer was expected");
        return static_cast<uint64_t>(*i);
    }
    throw wrong_type(type_, "an integer");
}

int64_t Value::as_i64() const {
    if (const auto* i = std::get_if<int64_t>(&v_)) return *i;
    if (const auto* u = std::get_if<uint64_t>(&v_)) {
        if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw Error("integer value out of range");
        return static_cast<int64_t>(*u);
    }
    throw wrong_type(type_, "an integer");
}

double Value::as_f64() const {
    if (const auto* d = std::get_if<double>(&v_)) return *d;
    if (const auto* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
    if (const auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
    throw wrong_type(type_, "a number");
}

bool Value::as_bool() const {
    if (const auto* b = std::get_if<bool>(&v_)) return *b;
    throw wrong_type(type_, "a bool");
}

const std::string& Value::as_string() const {
    if (const auto* s = std::get_if<std::string>(&v_)) return *s;
    throw wrong_type(type_, "a string");
}

const Array& Value::as_array() const {
    if (const auto* a = std::get_if<Array>(&v_)) return *a;
    throw wrong_type(type_, "an array");
}

static std::string quote(const std::string& s, size_t max_len) {
    std::string out = "\"";
    size_t n = 0;
    for (unsigned char c : s) {
        if (n++ >= max_len) {
            out += "...";
            break;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string Value::to_display(size_t preview) const {
    switch (type_) {
        case ValueType::String: return quote(as_string(), 120);
        case ValueType::Bool: return as_bool() ? "true" : "false";
        case ValueType::F32:
        case ValueType::F64: {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.9g", as_f64());
            return buf;
        }
        case ValueType::Array: {
            const Array& a = as_array();
            std::string out = "[";
            out.append(std::to_string(a.items.size())).append(" x ").append(value_type_name(a.elem_type)).append("]");
            if (a.items.empty() || preview == 0) return out;
            out += " ";
            for (size_t i = 0; i < a.items.size() && i < preview; ++i) {
                if (i) out += ", ";
                out += a.items[i].to_display(0);
            }
            if (a.items.size() > preview) out += ", ...";
            return out;
        }
        default: return is_integer() && std::holds_alternative<int64_t>(v_) ? std::to_string(as_i64())
                                                                            : std::to_string(as_u64());
    }
}

bool Array::operator==(const Array& o) const { return elem_type == o.elem_type && items == o.items; }

bool Value::operator==(const Value& o) const {
    if (type_ != o.type_) return false;
    if (type_ == ValueType::F32 || type_ == ValueType::F64) {
        // Bitwise, so NaN == NaN: equality here means "would serialize identically".
        double x = as_f64(), y = o.as_f64();
        return std::memcmp(&x, &y, sizeof x) == 0 || x == y;
    }
    return v_ == o.v_;
}

void Metadata::set(const std::string& key, Value v) {
    auto it = index_.find(key);
    if (it != index_.end()) {
        entries_[it->second].second = std::move(v);
        return;
    }
    index_.emplace(key, entries_.size());
    entries_.emplace_back(key, std::move(v));
}

bool Metadata::erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
    index_.clear();
    for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
    return true;
}

const Value* Metadata::find(std::string_view key) const {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const Value& Metadata::at(std::string_view key) const {
    const Value* v = find(key);
    if (!v) throw Error("missing metadata key '" + std::string(key) + "'");
    return *v;
}

template <typename F>
static auto with_key(std::string_view key, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const Error& e) {
        throw Error("metadata key '" + std::string(key) + "': " + e.what());
    }
}

uint64_t Metadata::get_u64(std::string_view key) const {
    const Value& v = at(key);
    return with_key(key, [&] { return v.as_u64(); });
}

uint32_t Metadata::get_u32(std::string_view key) const {
    uint64_t v = get_u64(key);
    if (v > std::numeric_limits<uint32_t>::max()) {
        throw Error("metadata key '" + std::string(key) + "': value " + std::to_string(v) + " does not fit in 32 bits");
    }
    return static_cast<uint32_t>(v);
}

int64_t Metadata::get_i64(std::string_view key) const {
    const Value& v = at(key);
    return with_key(key, [&] { return v.as_i64(); });
}

float Metadata::get_f32(std::string_view key) const {
    const Value& v = at(key);
    return with_key(key, [&] { return static_cast<float>(v.as_f64()); });
}

bool Metadata::get_bool(std::string_view key) const {
    const Value& v = at(key);
    return with_key(key, [&] { return v.as_bool(); });
}

const std::string& Metadata::get_string(std::string_view key) const {
    const Value& v = at(key);
    return with_key(key, [&]() -> const std::string& { return v.as_string(); });
}

const Array& Metadata::get_array(std::string_view key) const {
    const Value& v = at(key);
    return with_key(key, [&]() -> const Array& { return v.as_array(); });
}

std::vector<std::string> Metadata::get_string_array(std::string_view key) const {
    const Array& a = get_array(key);
    return with_key(key, [&] {
        std::vector<std::string> out;
        out.reserve(a.items.size());
        for (const auto& item : a.items) out.push_back(item.as_string());
        return out;
    });
}

std::vector<float> Metadata::get_f32_array(std::string_view key) const {
    const Array& a = get_array(key);
    return with_key(key, [&] {
        std::vector<float> out;
        out.reserve(a.items.size());
        for (const auto& item : a.items) out.push_back(static_cast<float>(item.as_f64()));
        return out;
    });
}

std::vector<int64_t> Metadata::get_int_array(std::string_view key) const {
    const Array& a = get_array(key);
    return with_key(key, [&] {
        std::vector<int64_t> out;
        out.reserve(a.items.size());
        for (const auto& item : a.items) out.push_back(item.as_i64());
        return out;
    });
}

uint32_t Metadata::get_u32_or(std::string_view key, uint32_t dflt) const {
    return contains(key) ? get_u32(key) : dflt;
}

float Metadata::get_f32_or(std::string_view key, float dflt) const { return contains(key) ? get_f32(key) : dflt; }

bool Metadata::get_bool_or(std::string_view key, bool dflt) const { return contains(key) ? get_bool(key) : dflt; }

std::string Metadata::get_string_or(std::string_view key, std::string dflt) const {
    return contains(key) ? get_string(key) : dflt;
}

}  // namespace gguf
