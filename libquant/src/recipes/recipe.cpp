// The recipe table, and the model facts the mixture rules read from GGUF metadata (through
// gguf::ArchKeys, the reader the runtime uses too).
#include <algorithm>
#include <cctype>

#include "gguf/arch_keys.h"
#include "gguf/error.h"
#include "quant/recipe.h"

namespace quant {

namespace {

using T = GgmlType;
using F = FileType;

// Sizes are bits per weight of the base type; mixtures land a little above it.
constexpr Recipe kRecipes[] = {
    {"F32", F::ALL_F32, T::F32, {}, {}, "32-bit float, no quantization"},
    {"F16", F::MOSTLY_F16, T::F16, {}, {}, "16-bit IEEE half float"},
    {"BF16", F::MOSTLY_BF16, T::BF16, {}, {}, "16-bit bfloat"},
    {"Q8_0", F::MOSTLY_Q8_0, T::Q8_0, {}, {}, "8.50 bpw, near lossless"},
    {"Q6_K", F::MOSTLY_Q6_K, T::Q6_K, {}, {}, "6.56 bpw"},
    {"Q5_K_M", F::MOSTLY_Q5_K_M, T::Q5_K, {}, {}, "5.5 bpw, Q6_K for part of attn_v and ffn_down"},
    {"Q5_K_S", F::MOSTLY_Q5_K_S, T::Q5_K, {}, {}, "5.5 bpw"},
    {"Q5_1", F::MOSTLY_Q5_1, T::Q5_1, {}, {}, "6.0 bpw, legacy"},
    {"Q5_0", F::MOSTLY_Q5_0, T::Q5_0, {}, {}, "5.5 bpw, legacy"},
    {"Q4_K_L", F::MOSTLY_Q4_K_M, T::Q4_K, T::Q8_0, T::Q8_0,
     "Q4_K_M with Q8_0 token embedding and output (file type Q4_K_M)"},
    {"Q4_K_M", F::MOSTLY_Q4_K_M, T::Q4_K, {}, {}, "4.5 bpw, Q6_K for part of attn_v and ffn_down"},
    {"Q4_K_S", F::MOSTLY_Q4_K_S, T::Q4_K, {}, {}, "4.5 bpw, Q5_K for the first attn_v and ffn_down"},
    {"Q4_1", F::MOSTLY_Q4_1, T::Q4_1, {}, {}, "5.0 bpw, legacy"},
    {"Q4_0", F::MOSTLY_Q4_0, T::Q4_0, {}, {}, "4.5 bpw, legacy"},
    {"IQ4_XS", F::MOSTLY_IQ4_XS, T::IQ4_XS, {}, {}, "4.25 bpw non-linear"},
    {"IQ4_NL", F::MOSTLY_IQ4_NL, T::IQ4_NL, {}, {}, "4.5 bpw non-linear"},
    {"MXFP4_MOE", F::MOSTLY_MXFP4_MOE, T::MXFP4, {}, {}, "MXFP4 expert tensors, Q8_0 for everything else"},
    {"Q3_K_L", F::MOSTLY_Q3_K_L, T::Q3_K, {}, {}, "3.44 bpw base, Q5_K attn_v / ffn_down / attn_output"},
    {"Q3_K_M", F::MOSTLY_Q3_K_M, T::Q3_K, {}, {}, "3.44 bpw base, Q4_K/Q5_K for sensitive tensors"},
    {"Q3_K_S", F::MOSTLY_Q3_K_S, T::Q3_K, {}, {}, "3.44 bpw"},
    {"IQ3_M", F::MOSTLY_IQ3_M, T::IQ3_S, {}, {}, "3.66 bpw mixture"},
    {"IQ3_S", F::MOSTLY_IQ3_S, T::IQ3_S, {}, {}, "3.44 bpw"},
    {"IQ3_XS", F::MOSTLY_IQ3_XS, T::IQ3_S, {}, {}, "3.3 bpw mixture"},
    {"IQ3_XXS", F::MOSTLY_IQ3_XXS, T::IQ3_XXS, {}, {}, "3.06 bpw, needs an imatrix"},
    {"Q2_K", F::MOSTLY_Q2_K, T::Q2_K, {}, {}, "2.63 bpw base, Q3_K/Q4_K for sensitive tensors"},
    {"Q2_K_S", F::MOSTLY_Q2_K_S, T::Q2_K, {}, {}, "2.63 bpw, needs an imatrix"},
    {"IQ2_M", F::MOSTLY_IQ2_M, T::IQ2_S, {}, {}, "2.7 bpw, needs an imatrix"},
    {"IQ2_S", F::MOSTLY_IQ2_S, T::IQ2_XS, {}, {}, "2.5 bpw, needs an imatrix"},
    {"IQ2_XS", F::MOSTLY_IQ2_XS, T::IQ2_XS, {}, {}, "2.31 bpw, needs an imatrix"},
    {"IQ2_XXS", F::MOSTLY_IQ2_XXS, T::IQ2_XXS, {}, {}, "2.06 bpw, needs an imatrix"},
    {"IQ1_M", F::MOSTLY_IQ1_M, T::IQ1_M, {}, {}, "1.75 bpw, needs an imatrix"},
    {"IQ1_S", F::MOSTLY_IQ1_S, T::IQ1_S, {}, {}, "1.56 bpw, needs an imatrix"},
    {"TQ2_0", F::MOSTLY_TQ2_0, T::TQ2_0, {}, {}, "2.06 bpw ternary (for ternary-trained models)"},
    {"TQ1_0", F::MOSTLY_TQ1_0, T::TQ1_0, {}, {}, "1.69 bpw ternary (for ternary-trained models)"},
    // llama-quantize's short names.
    {"Q5_K", F::MOSTLY_Q5_K_M, T::Q5_K, {}, {}, "alias for Q5_K_M"},
    {"Q4_K", F::MOSTLY_Q4_K_M, T::Q4_K, {}, {}, "alias for Q4_K_M"},
    {"Q3_K", F::MOSTLY_Q3_K_M, T::Q3_K, {}, {}, "alias for Q3_K_M"},
};

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// A count read as llama.cpp's n_head() reads it: layer 0's when stored per layer. Absent keys read as 0.
uint32_t read_count(const gguf::ArchKeys& keys, std::string_view suffix) {
    try {
        const std::vector<uint64_t> v = keys.counts(suffix);
        return v.empty() ? 0 : static_cast<uint32_t>(std::min<uint64_t>(v.front(), UINT32_MAX));
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

}  // namespace

std::span<const Recipe> recipes() { return kRecipes; }

const Recipe* find_recipe(std::string_view name) {
    for (const Recipe& r : kRecipes) {
        if (iequals(r.name, name)) return &r;
    }
    return nullptr;
}

const Recipe* recipe_for_file_type(uint32_t file_type) {
    for (const Recipe& r : kRecipes) {
        // Q4_K_L writes Q4_K_M's id and the aliases repeat their target's: the plain recipe names the id
        const bool preset = r.token_embedding_type || r.output_type;
        if (static_cast<uint32_t>(r.file_type) == file_type && !preset && !r.description.starts_with("alias")) return &r;
    }
    return nullptr;
}

bool is_weight_storage_type(GgmlType type) {
    switch (type) {
        case T::F32:
        case T::F16:
        case T::BF16:
            return true;
        case T::Q8_1:
        case T::Q8_K:
            return false;
        default:
            return gguf::type_traits(type).quantized;
    }
}

ModelFacts ModelFacts::from_metadata(const gguf::Metadata& md) {
    const gguf::ArchKeys keys(md);
    ModelFacts f;
    f.arch = keys.arch();
    f.n_layer = read_count(keys, "block_count");
    f.n_head = read_count(keys, "attention.head_count");
    f.n_head_kv = keys.find("attention.head_count_kv") ? read_count(keys, "attention.head_count_kv") : f.n_head;
    f.n_expert = read_count(keys, "expert_count");
    return f;
}

}  // namespace quant
