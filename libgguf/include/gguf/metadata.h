// GGUF metadata: typed values (scalars, strings, nested arrays) in file order, with typed accessors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace gguf {

// Ids are the GGUF specification's gguf_metadata_value_type.
enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

std::string_view value_type_name(ValueType t);
bool is_valid_value_type(uint32_t id);
// Bytes of one encoded scalar of type t; 0 for String and Array.
uint32_t scalar_size(ValueType t);

class Value;

struct Array {
    ValueType elem_type = ValueType::U8;
    std::vector<Value> items;
    bool operator==(const Array& o) const;
};

// One metadata value. Integers keep their exact GGUF type so a file round-trips byte for byte.
class Value {
public:
    Value() = default;
    static Value u8(uint8_t v) { return Value(ValueType::U8, uint64_t{v}); }
    static Value i8(int8_t v) { return Value(ValueType::I8, int64_t{v}); }
    static Value u16(uint16_t v) { return Value(ValueType::U16, uint64_t{v}); }
    static Value i16(int16_t v) { return Value(ValueType::I16, int64_t{v}); }
    static Value u32(uint32_t v) { return Value(ValueType::U32, uint64_t{v}); }
    static Value i32(int32_t v) { return Value(ValueType::I32, int64_t{v}); }
    static Value u64(uint64_t v) { return Value(ValueType::U64, v); }
    static Value i64(int64_t v) { return Value(ValueType::I64, v); }
    static Value f32(float v) { return Value(ValueType::F32, double{v}); }
    static Value f64(double v) { return Value(ValueType::F64, v); }
    static Value boolean(bool v) { return Value(ValueType::Bool, v); }
    static Value string(std::string v) { return Value(ValueType::String, std::move(v)); }
    static Value array(Array a) { return Value(ValueType::Array, std::move(a)); }
    static Value string_array(const std::vector<std::string>& items);
    static Value f32_array(const std::vector<float>& items);
    static Value i32_array(const std::vector<int32_t>& items);

    ValueType type() const { return type_; }
    bool is_integer() const;

    // Checked conversions: the wrong kind of value, or an integer out of range, throws gguf::Error.
    uint64_t as_u64() const;
    int64_t as_i64() const;
    double as_f64() const;  // integers and floats
    bool as_bool() const;
    const std::string& as_string() const;
    const Array& as_array() const;

    // Short human form: scalars printed, arrays as "[N x type]" with the first `preview` items.
    std::string to_display(size_t preview = 8) const;

    bool operator==(const Value& o) const;

private:
    using Storage = std::variant<std::monostate, uint64_t, int64_t, double, bool, std::string, Array>;
    Value(ValueType t, Storage s) : type_(t), v_(std::move(s)) {}
    ValueType type_ = ValueType::U8;
    Storage v_;
};

// Key/value pairs in file order; lookup by key.
class Metadata {
public:
    void set(const std::string& key, Value v);  // replaces in place or appends
    bool erase(const std::string& key);
    const Value* find(std::string_view key) const;
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    const Value& at(std::string_view key) const;  // missing key throws gguf::Error

    // Typed accessors: missing key or wrong type throws gguf::Error naming the key.
    uint64_t get_u64(std::string_view key) const;
    uint32_t get_u32(std::string_view key) const;
    int64_t get_i64(std::string_view key) const;
    float get_f32(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    const std::string& get_string(std::string_view key) const;
    const Array& get_array(std::string_view key) const;
    std::vector<std::string> get_string_array(std::string_view key) const;
    std::vector<float> get_f32_array(std::string_view key) const;
    std::vector<int64_t> get_int_array(std::string_view key) const;

    // With a default for absent keys (a present key of the wrong type still throws).
    uint32_t get_u32_or(std::string_view key, uint32_t dflt) const;
    float get_f32_or(std::string_view key, float dflt) const;
    bool get_bool_or(std::string_view key, bool dflt) const;
    std::string get_string_or(std::string_view key, std::string dflt) const;

    size_t size() const { return entries_.size(); }
    const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

private:
    std::vector<std::pair<std::string, Value>> entries_;
    std::unordered_map<std::string, size_t> index_;
};

}  // namespace gguf
