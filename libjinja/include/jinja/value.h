// The values a Jinja template works on, with Python's semantics where chat templates rely on them:
// dicts keep insertion order, lists and dicts are shared by reference (a namespace's attributes set
// inside a loop are seen after it), printing follows Python's str() and tojson Python's json.dumps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace jinja {

class Value;

// Arguments of a call: positional, then keyword ones in the order written.
struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;

    // The argument at `index` or named `name`; nullptr when it was not given.
    const Value* get(size_t index, std::string_view name) const;
};

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Function };
    using Array = std::vector<Value>;
    struct Object {
        std::vector<std::pair<std::string, Value>> items;  // insertion order, as Python's dict
        bool is_namespace = false;                        // namespace(): its attributes may be set
        const Value* find(std::string_view key) const;
        void set(const std::string& key, Value v);
    };
    using Function = std::function<Value(const CallArgs&)>;

    Value() = default;  // undefined
    static Value none();
    Value(bool b);
    Value(int v) : Value(static_cast<int64_t>(v)) {}
    Value(int64_t v);
    Value(double v);
    Value(std::string s);
    Value(const char* s) : Value(std::string(s)) {}
    static Value array(Array items = {});
    static Value object();
    static Value object(Object o);
    static Value function(Function f);
    // Keys keep their order (ordered_json), as Python dicts loaded from JSON do.
    static Value from_json(const nlohmann::ordered_json& j);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::Undefined; }
    bool is_none() const { return kind_ == Kind::None; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
    bool is_array() const { return kind_ == Kind::Array; }
    bool is_object() const { return kind_ == Kind::Object; }
    bool is_callable() const { return kind_ == Kind::Function; }

    bool as_bool() const { return b_; }
    int64_t as_int() const { return kind_ == Kind::Float ? static_cast<int64_t>(d_) : i_; }
    double as_double() const { return kind_ == Kind::Float ? d_ : static_cast<double>(i_); }
    const std::string& str() const { return *s_; }
    Array& items() const { return *a_; }
    Object& obj() const { return *o_; }
    const Function& fn() const { return *f_; }

    // Python truthiness: empty strings, lists and dicts, 0, None and undefined are false.
    bool truthy() const;
    // Python's str(): None, True, 1.5, ['a', 1], {'k': 'v'}; undefined prints as nothing.
    std::string to_string() const;
    // Python's repr() (strings quoted), as inside printed lists and dicts.
    std::string repr() const;
    // Python's json.dumps(ensure_ascii=False): indent < 0 is one line with ", " and ": ".
    std::string to_json(int indent = -1, bool sort_keys = false) const;
    // Python's ==: numbers by value (True == 1), lists and dicts element by element.
    bool equals(const Value& other) const;
    const char* type_name() const;

private:
    Kind kind_ = Kind::Undefined;
    bool b_ = false;
    int64_t i_ = 0;
    double d_ = 0;
    std::shared_ptr<const std::string> s_;
    std::shared_ptr<Array> a_;
    std::shared_ptr<Object> o_;
    std::shared_ptr<const Function> f_;
};

// Python's repr() of a float: the shortest text that reads back, "1.0", "1e+16", "1e-05".
std::string float_repr(double d);

}  // namespace jinja
