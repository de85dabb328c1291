// A small streaming JSON writer for the apps' --json output: commas and indentation handled here,
// strings and numbers written by nlohmann-json (broken UTF-8 becomes U+FFFD, so the output is always valid).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace appcommon {

class JsonWriter {
public:
    explicit JsonWriter(std::ostream& out, bool pretty = true) : out_(out), pretty_(pretty) {}
    ~JsonWriter();

    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view k);  // inside an object, before each value

    JsonWriter& value(std::string_view s);
    JsonWriter& value(const char* s) { return value(std::string_view(s)); }
    JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
    JsonWriter& value(bool b);
    JsonWriter& value(int64_t v);
    JsonWriter& value(uint64_t v);
    JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
    JsonWriter& value(unsigned v) { return value(static_cast<uint64_t>(v)); }
    JsonWriter& value(double v);  // non-finite values are written as null
    JsonWriter& null();

    template <typename T>
    JsonWriter& field(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }

    // A JSON string literal, quotes included.
    static std::string escape(std::string_view s);

private:
    void before_value();
    JsonWriter& close(char bracket);
    void newline();
    std::ostream& out_;
    bool pretty_;
    struct Level {
        bool is_object;
        bool empty = true;
    };
    std::vector<Level> stack_;
    bool after_key_ = false;
};

}  // namespace appcommon
