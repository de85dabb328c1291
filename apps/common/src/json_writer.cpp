#include "appcommon/json_writer.h"

#include <nlohmann/json.hpp>

namespace appcommon {

JsonWriter::~JsonWriter() {
    if (stack_.empty()) out_ << '\n';
}

// nlohmann-json writes the strings and floats: valid UTF-8 passes through, broken UTF-8 (file names,
// metadata strings, token pieces) becomes U+FFFD so the document stays valid JSON.
std::string JsonWriter::escape(std::string_view s) {
    return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void JsonWriter::newline() {
    if (!pretty_) return;
    out_ << '\n';
    for (size_t i = 0; i < stack_.size(); ++i) out_ << "  ";
}

void JsonWriter::before_value() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!stack_.empty()) {
        if (!stack_.back().empty) out_ << ',';
        stack_.back().empty = false;
        newline();
    }
}

JsonWriter& JsonWriter::key(std::string_view k) {
    if (!stack_.empty()) {
        if (!stack_.back().empty) out_ << ',';
        stack_.back().empty = false;
        newline();
    }
    out_ << escape(k) << (pretty_ ? ": " : ":");
    after_key_ = true;
    return *this;
}

JsonWriter& JsonWriter::begin_object() {
    before_value();
    out_ << '{';
    stack_.push_back({true});
    return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
    bool empty = stack_.back().empty;
    stack_.pop_back();
    if (!empty) newline();
    out_ << bracket;
    return *this;
}

JsonWriter& JsonWriter::end_object() { return close('}'); }

JsonWriter& JsonWriter::begin_array() {
    before_value();
    out_ << '[';
    stack_.push_back({false});
    return *this;
}

JsonWriter& JsonWriter::end_array() { return close(']'); }

JsonWriter& JsonWriter::value(std::string_view s) {
    before_value();
    out_ << escape(s);
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    before_value();
    out_ << (b ? "true" : "false");
    return *this;
}

JsonWriter& JsonWriter::value(int64_t v) {
    before_value();
    out_ << v;
    return *this;
}

JsonWriter& JsonWriter::value(uint64_t v) {
    before_value();
    out_ << v;
    return *this;
}

JsonWriter& JsonWriter::value(double v) {
    before_value();
    out_ << nlohmann::json(v).dump();  // shortest text that reads back as v; null when not finite
    return *this;
}

JsonWriter& JsonWriter::null() {
    before_value();
    out_ << "null";
    return *this;
}

}  // namespace appcommon
