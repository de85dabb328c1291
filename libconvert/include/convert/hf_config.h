// A checkpoint's config.json (Hugging Face key names; the GGUF keys are gguf::ArchKeys' and
// runtime::HParams'): first-of-several keys (HF models spell the same setting differently), typed
// access, and errors that name the file and key.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "convert/json.h"

namespace convert {

class HfConfig {
public:
    // `source` names the file in messages. A nested "text_config" (multimodal wrappers) is
    // consulted before the top level, as llama.cpp lifts it to the root.
    HfConfig(json::Value config, std::string source);

    const std::string& source() const { return source_; }

    // The value of the first of `keys` that is present; nullptr when none is, or when the first
    // present one is null (HF writes "pad_token_id": null for "not set").
    const json::Value* find(std::initializer_list<std::string_view> keys) const;

    // Typed lookups: absent gives nullopt; present with the wrong type throws naming the key.
    std::optional<int64_t> find_int(std::initializer_list<std::string_view> keys) const;
    std::optional<double> find_number(std::initializer_list<std::string_view> keys) const;
    // Required: absent throws "SOURCE: missing key "K"".
    int64_t require_int(std::initializer_list<std::string_view> keys) const;

    // architectures[0], the class name the checkpoint was saved from.
    std::string architecture() const;

private:
    const json::Value* lookup(std::string_view key) const;
    std::string present_key(std::initializer_list<std::string_view> keys) const;  // for messages
    json::Value root_;
    std::string source_;
};

}  // namespace convert
