#include "cuda/prefill_choice.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/error.h"

namespace runtime::cuda {

PrefillChoice parse_prefill_choice(const char* spec) {
    PrefillChoice c;
    if (spec == nullptr) return c;
    std::string_view rest(spec);
    while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        const std::string key(item.substr(0, eq));
        const std::string value(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
        const auto bad = [&] { return Error("GGUF_CUDA_PREFILL: bad setting '" + std::string(item) + "'"); };
        if (key == "attn") {
            if (value != "tc" && value != "f32") throw bad();
            c.f32_attention = value == "f32";
        } else if (key == "dense") {
            if (value == "off") {
                c.dense_rows = kDenseOff;
                continue;
            }
            size_t used = 0;
            int n = 0;
            try {
                n = std::stoi(value, &used);
            } catch (const std::exception&) {
                throw bad();
            }
            if (used != value.size() || n < 1) throw bad();
            c.dense_rows = n;
        } else if (key == "tile" || key == "down") {
            MmaTile t;
            if (value == "64") t = MmaTile::Slots64;
            else if (value == "64s") t = MmaTile::Slots64Short;
            else if (value == "32") t = MmaTile::Slots32;
            else if (value == "128") t = MmaTile::Rows128;
            else if (value == "128p") t = MmaTile::Rows128Paired;
            else throw bad();
            (key == "tile" ? c.tile : c.down_tile) = t;
        } else if (key == "moe") {
            if (value != "auto" && value != "int8") throw bad();
            c.dense_experts = value == "auto";
        } else {
            throw bad();
        }
    }
    return c;
}

FusionChoice parse_fusion_choice(const char* spec) {
    FusionChoice f;
    const std::string_view v = spec ? spec : "";
    if (v == "0") {
        f.on = false;
    } else if (!v.empty() && v != "1") {
        throw Error("GGUF_CUDA_FUSE: bad setting '" + std::string(v) + "' (0 or 1)");
    }
    return f;
}

const FusionChoice& fusion_choice() {
    static const FusionChoice c = parse_fusion_choice(std::getenv("GGUF_CUDA_FUSE"));
    return c;
}

const PrefillChoice& prefill_choice() {
    static const PrefillChoice c = parse_prefill_choice(std::getenv("GGUF_CUDA_PREFILL"));
    return c;
}

}  // namespace runtime::cuda
