// A strict JSON (RFC 8259) reader for the small-to-medium documents of a Hugging Face checkpoint
// (config.json, tokenizer.json, safetensors headers): nlohmann-json parses, and the tree kept here is
// what the converter needs. Objects keep their key order, numbers keep an exact int64 beside the
// double, and every defect is a convert::Error with line and column.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "convert/error.h"

namespace convert::json {

enum class Type { Null, Bool, Number, String, Array, Object };
std::string_view type_name(Type t);

// Nesting deeper than this is rejected rather than risking the stack on hostile input.
constexpr size_t kMaxDepth = 512;

struct Member;
class Value;

namespace detail {
struct Number {
    double value = 0;
    int64_t integer = 0;
    bool exact = false;  // `integer` holds the exact value (an integral literal within int64)
};
struct Object {
    std::vector<Member> members;   // document order
    std::vector<uint32_t> sorted;  // indices into members ordered by key, for lookup
};
}  // namespace detail

class Value {
public:
    Value() = default;  // null

    Type type() const { return static_cast<Type>(v_.index()); }
    bool is_null() const { return type() == Type::Null; }
    bool is_bool() const { return type() == Type::Bool; }
    bool is_number() const { return type() == Type::Number; }
    bool is_string() const { return type() == Type::String; }
    bool is_array() const { return type() == Type::Array; }
    bool is_object() const { return type() == Type::Object; }
    // A number whose value is an exact int64 (1, -7, 1e3 and 2.0 are; 1.5 and 1e30 are not).
    bool is_integer() const;

    // Checked accessors: the wrong type (or a non-integral number for as_int) throws convert::Error.
    bool as_bool() const;
    double as_double() const;
    int64_t as_int() const;
    const std::string& as_string() const;

    // Arrays.
    const std::vector<Value>& items() const;
    const Value& at(size_t i) const;  // out of range throws

    // Objects, in document order.
    const std::vector<Member>& entries() const;
    const Value* find(std::string_view key) const;  // nullptr when absent
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    const Value& operator[](std::string_view key) const;  // absent throws naming the key

    // Elements of an array or members of an object; other types throw.
    size_t size() const;

private:
    friend class Builder;  // json.cpp: fills values from the parser's events
    std::variant<std::monostate, bool, detail::Number, std::string, std::vector<Value>, detail::Object> v_;
};

struct Member {
    std::string key;
    Value value;
};

// Parses one complete document (whitespace around it allowed, nothing else). `source` names the
// text in error messages: "SOURCE:LINE:COLUMN: WHAT".
Value parse(std::string_view text, const std::string& source = "<json>");
// Reads and parses a file; errors name the path.
Value parse_file(const std::string& path);

}  // namespace convert::json
