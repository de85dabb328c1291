// What a GGUF holds, summarized from its header alone (no tensor data is read).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/file.h"

namespace gguf {

// The part of a transformer a tensor belongs to, from llama.cpp's tensor naming.
enum class TensorRole { Embedding, Output, Attention, FeedForward, Experts, Router, Norm, Other };
std::string_view role_name(TensorRole r);
TensorRole tensor_role(std::string_view name);
// N for names "blk.N.*", nothing otherwise.
std::optional<int> block_index(std::string_view name);

struct TypeShare {
    uint64_t tensors = 0;
    uint64_t elements = 0;
    uint64_t bytes = 0;
};

struct BlockShare {
    uint64_t bytes = 0;
    uint64_t attention = 0;
    uint64_t feed_forward = 0;  // dense FFN, shared experts and the router
    uint64_t experts = 0;
    uint64_t other = 0;         // norms and the rest
};

struct Summary {
    std::string architecture;   // general.architecture, "" if absent
    std::string name;           // general.name, "" if absent
    uint64_t parameters = 0;    // elements over all tensors
    uint64_t tensor_bytes = 0;
    uint64_t file_size = 0;
    double bits_per_weight() const { return parameters ? 8.0 * tensor_bytes / parameters : 0.0; }
    std::map<GgmlType, TypeShare> by_type;
    std::map<int, BlockShare> by_block;  // keyed by block index
    BlockShare outside_blocks;           // embeddings, output, final norm
};

Summary summarize(const File& f);

}  // namespace gguf
