// llama.cpp's per-architecture metadata keys ("llama.block_count", "qwen3moe.expert_count"): the one
// reader of model hyper-parameters that the quantizer's recipes and the runtime share. It knows the key
// convention and the value shapes, not what the values mean; each caller applies its own rules (the
// runtime refuses per-layer values that differ, the recipes take layer 0 as llama.cpp does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/metadata.h"

namespace gguf {

class ArchKeys {
public:
    // Reads general.architecture; empty when it is absent or not a string.
    explicit ArchKeys(const Metadata& md);

    const std::string& arch() const { return arch_; }
    // "ARCH.SUFFIX"
    std::string key(std::string_view suffix) const;
    const Value* find(std::string_view suffix) const { return md_.find(key(suffix)); }

    // Absent keys give nullopt; a value of the wrong kind throws gguf::Error "metadata KEY: WHY".
    std::optional<uint64_t> u64(std::string_view suffix) const;
    std::optional<double> f64(std::string_view suffix) const;  // integers and floats
    // A count llama.cpp allows as one integer or one per layer (head counts, FFN width): the values,
    // one for a scalar, none when absent.
    std::vector<uint64_t> counts(std::string_view suffix) const;

private:
    const Metadata& md_;
    std::string arch_;
};

}  // namespace gguf
