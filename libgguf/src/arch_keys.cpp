#include "gguf/arch_keys.h"

#include "gguf/error.h"

namespace gguf {

namespace {

template <class F>
auto checked(const std::string& key, F read) {
    try {
        return read();
    } catch (const Error& e) {
        throw Error("metadata " + key + ": " + e.what());
    }
}

}  // namespace

ArchKeys::ArchKeys(const Metadata& md) : md_(md) {
    if (const Value* a = md.find("general.architecture"); a && a->type() == ValueType::String) arch_ = a->as_string();
}

std::string ArchKeys::key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }

std::optional<uint64_t> ArchKeys::u64(std::string_view suffix) const {
    const Value* v = find(suffix);
    if (!v) return std::nullopt;
    return checked(key(suffix), [&] { return v->as_u64(); });
}

std::optional<double> ArchKeys::f64(std::string_view suffix) const {
    const Value* v = find(suffix);
    if (!v) return std::nullopt;
    return checked(key(suffix), [&] { return v->as_f64(); });
}

std::vector<uint64_t> ArchKeys::counts(std::string_view suffix) const {
    const Value* v = find(suffix);
    if (!v) return {};
    return checked(key(suffix), [&] {
        std::vector<uint64_t> out;
        if (v->type() != ValueType::Array) {
            out.push_back(v->as_u64());
        } else {
            for (const Value& item : v->as_array().items) out.push_back(item.as_u64());
        }
        return out;
    });
}

}  // namespace gguf
