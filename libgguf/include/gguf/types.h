// ggml tensor types as stored in GGUF files: ids, block geometry and names.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string_view>

namespace gguf {

// Ids are ggml's (ggml.h, enum ggml_type); gaps are ids ggml has retired.
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
};

struct TypeTraits {
    GgmlType type;
    std::string_view name;   // lower case, as llama.cpp prints it ("q4_K", "bf16")
    uint32_t block_size;     // elements per block
    uint32_t type_size;      // bytes per block
    bool quantized;          // block-quantized (not a plain float/int type)
};

// Traits of a raw type id read from a file; nullptr for ids ggml does not define.
const TypeTraits* find_type_traits(uint32_t id);
const TypeTraits& type_traits(GgmlType type);
std::string_view type_name(GgmlType type);
// Writes the type's name ("q4_K"), or "type#ID" for an id ggml does not define.
std::ostream& operator<<(std::ostream& os, GgmlType type);
// Case-insensitive lookup by name ("q4_k", "Q4_K", "bf16").
std::optional<GgmlType> type_from_name(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size.
uint64_t row_size(GgmlType type, uint64_t n);

// Every defined type, in id order.
const TypeTraits* all_types_begin();
const TypeTraits* all_types_end();

}  // namespace gguf
