#include "convert/hf_config.h"

#include "convert/error.h"

namespace convert {

namespace {

std::string key_list(std::initializer_list<std::string_view> keys) {
    std::string s;
    for (std::string_view k : keys) {
        if (!s.empty()) s += " or ";
        s += "\"" + std::string(k) + "\"";
    }
    return s;
}

}  // namespace

HfConfig::HfConfig(json::Value config, std::string source) : root_(std::move(config)), source_(std::move(source)) {
    if (!root_.is_object()) throw Error(source_ + ": not a JSON object");
}

const json::Value* HfConfig::lookup(std::string_view key) const {
    if (const json::Value* text = root_.find("text_config"); text && text->is_object())
        if (const json::Value* v = text->find(key)) return v;
    return root_.find(key);
}

std::string HfConfig::present_key(std::initializer_list<std::string_view> keys) const {
    for (std::string_view k : keys)
        if (lookup(k)) return std::string(k);
    return std::string(*keys.begin());
}

const json::Value* HfConfig::find(std::initializer_list<std::string_view> keys) const {
    for (std::string_view k : keys)
        if (const json::Value* v = lookup(k)) return v->is_null() ? nullptr : v;
    return nullptr;
}

std::optional<int64_t> HfConfig::find_int(std::initializer_list<std::string_view> keys) const {
    const json::Value* v = find(keys);
    if (!v) return std::nullopt;
    if (!v->is_integer())
        throw Error(source_ + ": key \"" + present_key(keys) + "\" is " +
                    std::string(json::type_name(v->type())) + (v->is_number() ? " (not an integer)" : "") +
                    ", expected an integer");
    return v->as_int();
}

std::optional<double> HfConfig::find_number(std::initializer_list<std::string_view> keys) const {
    const json::Value* v = find(keys);
    if (!v) return std::nullopt;
    if (!v->is_number())
        throw Error(source_ + ": key \"" + present_key(keys) + "\" is " +
                    std::string(json::type_name(v->type())) + ", expected a number");
    return v->as_double();
}

int64_t HfConfig::require_int(std::initializer_list<std::string_view> keys) const {
    std::optional<int64_t> v = find_int(keys);
    if (!v) throw Error(source_ + ": missing key " + key_list(keys));
    return *v;
}

std::string HfConfig::architecture() const {
    const json::Value* a = root_.find("architectures");
    if (!a || !a->is_array() || a->size() == 0 || !a->at(0).is_string())
        throw Error(source_ + ": missing \"architectures\" (a list naming the model class)");
    return a->at(0).as_string();
}

}  // namespace convert
