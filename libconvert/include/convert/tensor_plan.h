// What the output GGUF holds, decided before any data moves: each tensor's name, type, shape
// and where its bytes come from (one checkpoint tensor, several experts to stack, or values
// computed here), in llama.cpp's order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convert/architecture.h"
#include "convert/checkpoint.h"
#include "convert/outtype.h"
#include "gguf/types.h"

namespace convert {

struct PlannedTensor {
    std::string name;             // GGUF name, e.g. "blk.0.attn_q.weight"
    gguf::GgmlType type = gguf::GgmlType::F32;
    std::vector<int64_t> shape;   // PyTorch order (outermost first); GGUF dims are its reverse
    // Sources in output order: one tensor, or one per expert stacked along a new outer dimension.
    std::vector<const SafeTensor*> parts;
    // > 0: rows are regrouped per head (llama.cpp's Q/K permute for the llama architecture).
    int64_t permute_heads = 0;
    std::vector<float> values;    // data computed by the converter when `parts` is empty
    // MXFP4 experts (gpt-oss): ggml's blocks assembled from the checkpoint's `blocks` [E, R, G, 16]
    // (two E2M1 codes a byte, element 2j low) and `scales` [E, R, G] (E8M0), taking rows
    // row_offset, row_offset + row_step, ... of each expert. `parts` is empty then.
    struct Mxfp4Source {
        const SafeTensor* blocks = nullptr;
        const SafeTensor* scales = nullptr;
        int64_t row_step = 1, row_offset = 0;
    } mxfp4;
    // > 1: the innermost dimension keeps every inner_step-th element from inner_offset (gpt-oss's
    // gate and up biases, interleaved in one tensor)
    int64_t inner_step = 1, inner_offset = 0;
    // Qwen3.5's transforms (llama.cpp's converter applies them to its linear-attention tensors, norms
    // and fused experts): the source is read as matrices of `src_rows` rows of the output's innermost
    // length; each output matrix takes rows row_map[0], row_map[1], ... of its source matrix (all
    // rows in order when empty), each output row takes elements col_map[0], ... (in order when
    // empty), and every value then goes through `op`.
    enum class ValueOp { None, NegExp, AddOne };
    struct Remap {
        int64_t src_rows = 0;  // 0: no remapping
        std::vector<int64_t> row_map, col_map;
        ValueOp op = ValueOp::None;
    } remap;

    std::vector<int64_t> ggml_dims() const;
    uint64_t n_elements() const;
};

struct TensorPlan {
    std::vector<PlannedTensor> tensors;
    std::vector<std::string> warnings;
};

// Maps every checkpoint tensor, stacks experts, chooses types for `outtype` (not Auto): norms and
// other 1-D tensors, biases and the MoE router stay F32; q8_0 falls back to F16 where a row is
// not a multiple of 32. An unmappable tensor or an incomplete expert set throws.
TensorPlan plan_tensors(const Architecture& arch, const Checkpoint& checkpoint, OutType outtype);

// The type llama.cpp's converter gives a planned tensor under `outtype` (not Auto).
gguf::GgmlType planned_type(const PlannedTensor& t, OutType outtype);

// The HF -> GGUF name of a non-expert tensor for `arch`, or "" when it has none.
std::string gguf_tensor_name(const Architecture& arch, std::string_view hf_name);

// What --outtype auto means for this checkpoint (llama.cpp's heuristic): bf16 when the first
// 2-D weight is bf16, else f16.
OutType resolve_auto_outtype(const Checkpoint& checkpoint);

}  // namespace convert
