#include "gguf/summary.h"

#include <charconv>

namespace gguf {

std::string_view role_name(TensorRole r) {
    switch (r) {
        case TensorRole::Embedding: return "embedding";
        case TensorRole::Output: return "output";
        case TensorRole::Attention: return "attention";
        case TensorRole::FeedForward: return "ffn";
        case TensorRole::Experts: return "experts";
        case TensorRole::Router: return "router";
        case TensorRole::Norm: return "norm";
        case TensorRole::Other: return "other";
    }
    return "other";
}

std::optional<int> block_index(std::string_view name) {
    constexpr std::string_view prefix = "blk.";
    if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
    std::string_view rest = name.substr(prefix.size());
    int n = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || p == rest.data() || p == rest.data() + rest.size() || *p != '.') return std::nullopt;
    return n;
}

TensorRole tensor_role(std::string_view name) {
    auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
    if (name.starts_with("token_embd") || name.starts_with("tok_embd") || name.starts_with("position_embd")) {
        return has("norm") ? TensorRole::Norm : TensorRole::Embedding;
    }
    if (name.starts_with("output")) return has("norm") ? TensorRole::Norm : TensorRole::Output;
    if (has("_norm") || has(".norm")) return TensorRole::Norm;
    if (has("_exps")) return TensorRole::Experts;
    if (has("ffn_gate_inp") || has("exp_probs")) return TensorRole::Router;
    if (has(".attn_") || has(".attn.")) return TensorRole::Attention;
    if (has(".ffn_")) return TensorRole::FeedForward;
    return TensorRole::Other;
}

// A summary describes any parseable file, so a key of the wrong type reads as absent here; the
// metadata listing still shows what the key holds.
static std::string string_or_empty(const Metadata& m, std::string_view key) {
    const Value* v = m.find(key);
    return v && v->type() == ValueType::String ? v->as_string() : std::string();
}

Summary summarize(const File& f) {
    Summary s;
    s.architecture = string_or_empty(f.metadata(), "general.architecture");
    s.name = string_or_empty(f.metadata(), "general.name");
    s.file_size = f.file_size();
    for (const TensorInfo& t : f.tensors()) {
        const uint64_t bytes = t.n_bytes();
        s.parameters += t.n_elements();
        s.tensor_bytes += bytes;
        TypeShare& ts = s.by_type[t.type];
        ++ts.tensors;
        ts.elements += t.n_elements();
        ts.bytes += bytes;

        std::optional<int> blk = block_index(t.name);
        BlockShare& bs = blk ? s.by_block[*blk] : s.outside_blocks;
        bs.bytes += bytes;
        switch (tensor_role(t.name)) {
            case TensorRole::Attention: bs.attention += bytes; break;
            case TensorRole::FeedForward:
            case TensorRole::Router: bs.feed_forward += bytes; break;
            case TensorRole::Experts: bs.experts += bytes; break;
            default: bs.other += bytes; break;
        }
    }
    return s;
}

}  // namespace gguf
