// Quantization recipes: which ggml type every tensor of a model gets, and the streaming job that
// writes the quantized file. The choices follow llama.cpp's llama-quantize, so a recipe applied
// here gives the same tensor types as the same recipe applied there. A tensor's role comes from its
// GGUF name and the model's shape from its metadata; the few llama.cpp rules that single out an
// architecture by name are the ModelFacts predicates below, all in src/recipes/architectures.cpp,
// the one place libquant names architectures.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/file.h"
#include "gguf/output_file.h"
#include "gguf/metadata.h"
#include "quant/quant.h"

namespace quant {

class Imatrix;

// llama.cpp's llama_ftype numbering: the value written to general.file_type.
enum class FileType : uint32_t {
    ALL_F32 = 0,
    MOSTLY_F16 = 1,
    MOSTLY_Q4_0 = 2,
    MOSTLY_Q4_1 = 3,
    MOSTLY_Q8_0 = 7,
    MOSTLY_Q5_0 = 8,
    MOSTLY_Q5_1 = 9,
    MOSTLY_Q2_K = 10,
    MOSTLY_Q3_K_S = 11,
    MOSTLY_Q3_K_M = 12,
    MOSTLY_Q3_K_L = 13,
    MOSTLY_Q4_K_S = 14,
    MOSTLY_Q4_K_M = 15,
    MOSTLY_Q5_K_S = 16,
    MOSTLY_Q5_K_M = 17,
    MOSTLY_Q6_K = 18,
    MOSTLY_IQ2_XXS = 19,
    MOSTLY_IQ2_XS = 20,
    MOSTLY_Q2_K_S = 21,
    MOSTLY_IQ3_XS = 22,
    MOSTLY_IQ3_XXS = 23,
    MOSTLY_IQ1_S = 24,
    MOSTLY_IQ4_NL = 25,
    MOSTLY_IQ3_S = 26,
    MOSTLY_IQ3_M = 27,
    MOSTLY_IQ2_S = 28,
    MOSTLY_IQ2_M = 29,
    MOSTLY_IQ4_XS = 30,
    MOSTLY_IQ1_M = 31,
    MOSTLY_BF16 = 32,
    MOSTLY_TQ1_0 = 36,
    MOSTLY_TQ2_0 = 37,
    MOSTLY_MXFP4_MOE = 38,
};

// A named mixture. Most tensors get base_type; the rules move some up or down from it.
struct Recipe {
    std::string_view name;  // "Q4_K_M"
    FileType file_type;
    GgmlType base_type;
    // Preset types for the token embedding and output tensors (Q4_K_L); the user's options win.
    std::optional<GgmlType> token_embedding_type;
    std::optional<GgmlType> output_type;
    std::string_view description;
};

// Every recipe, in the order --help lists them; aliases (Q4_K = Q4_K_M) included.
std::span<const Recipe> recipes();
// Case-insensitive; nullptr when unknown.
const Recipe* find_recipe(std::string_view name);
// The recipe llama.cpp names by this general.file_type id (15: Q4_K_M); nullptr when none.
const Recipe* recipe_for_file_type(uint32_t file_type);

// What the rules need to know of the model, read from its GGUF metadata.
struct ModelFacts {
    std::string arch;        // general.architecture; read only by the predicates below
    uint32_t n_layer = 0;    // ARCH.block_count
    uint32_t n_head = 0;     // ARCH.attention.head_count (layer 0 when per layer)
    uint32_t n_head_kv = 0;  // ARCH.attention.head_count_kv, defaulting to n_head
    uint32_t n_expert = 0;   // ARCH.expert_count; 0 for dense models

    // Query heads per KV head (grouped-query attention); 0 when unknown.
    uint32_t gqa() const { return n_head_kv == 0 ? 0 : n_head / n_head_kv; }

    // llama.cpp's rules that name an architecture (src/recipes/architectures.cpp):
    // the 70B-class models whose attn_v gets extra bits (8 heads share each V);
    bool is_70b_class() const;
    // Falcon's own output-head, ffn_down and attn_output choices;
    bool falcon_rules() const;
    // 3-D (stacked) attention tensors beside the experts, which MXFP4_MOE must not take for experts.
    bool stacks_attention() const;

    static ModelFacts from_metadata(const gguf::Metadata& md);
};

// --tensor-type REGEX=TYPE: tensors whose name the (ECMAScript) regex finds get TYPE.
struct TensorTypeOverride {
    std::string pattern;
    GgmlType type;
};

struct RecipeOptions {
    bool pure = false;          // the base type everywhere: no mixture rules
    bool have_imatrix = false;  // some rules differ when an importance matrix guides the quantizer
    std::optional<GgmlType> token_embedding_type;
    std::optional<GgmlType> output_tensor_type;
    std::vector<TensorTypeOverride> overrides;  // first match wins
};

// Whether a type may be the target of a recipe or an override (a float or a block storage type;
// not the integer types nor the activation-only Q8_1 / Q8_K).
bool is_weight_storage_type(GgmlType type);

// How a tensor's type was arrived at.
enum class ChoiceSource {
    Kept,      // not a tensor the recipe touches (1-D, norms, router, ...): type unchanged
    Recipe,    // the recipe's base type or its mixture rules
    Option,    // --token-embedding-type / --output-tensor-type, or a recipe preset for them
    Override,  // a --tensor-type pattern
};

struct TypeChoice {
    GgmlType type;
    ChoiceSource source = ChoiceSource::Kept;
    // Set when the row length did not fit the chosen type and a compatible one replaced it.
    std::optional<GgmlType> fallback_from;
    // The quantizer for `type` cannot run without importance data here (IQ1/IQ2/IQ3_XXS, Q2_K_S).
    bool requires_imatrix = false;
};

// Tensor order of llama.cpp's quantizer and of the files it writes: tensors outside "blk.N."
// first, then by layer number, each group by name. The mixture rules count tensors in this order.
std::vector<size_t> quantization_order(std::span<const gguf::TensorInfo> tensors);

// The type of every tensor, index for index with `tensors`. Throws quant::Error for what the
// rules cannot resolve (an override type that fits no row, a MoE tensor outside "blk.N.").
std::vector<TypeChoice> choose_types(const Recipe& recipe, const ModelFacts& model,
                                     const RecipeOptions& options,
                                     std::span<const gguf::TensorInfo> tensors);

// ---- Planning and writing a quantized file ----

enum class ImatrixUse {
    NotApplicable,  // no imatrix given, or the tensor is copied as it is
    Used,
    Missing,  // quantized without importance data: the imatrix has no entry for it
};

struct TensorPlan {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType from;
    TypeChoice to;
    uint64_t from_bytes = 0;
    uint64_t to_bytes = 0;
    ImatrixUse imatrix = ImatrixUse::NotApplicable;

    bool converts() const { return from != to.type; }
    uint64_t n_elements() const;
};

struct QuantPlan {
    const Recipe* recipe = nullptr;
    ModelFacts model;
    std::vector<TensorPlan> tensors;  // in output order
    gguf::Metadata metadata;          // what the output file's header will hold
    uint64_t file_bytes = 0;          // exact size of the output file
    std::vector<std::string> warnings;

    uint64_t from_bytes() const;
    uint64_t to_bytes() const;
    uint64_t n_elements() const;
    size_t n_fallbacks() const;
};

struct PlanInputs {
    const Recipe* recipe = nullptr;
    RecipeOptions options;             // have_imatrix is set from `imatrix`
    const Imatrix* imatrix = nullptr;  // optional
    // Planning without writing: missing importance data for a type that needs it is a warning.
    bool dry_run = false;
    // imatrix entries that name no tensor of the model mean the imatrix was made for another model:
    // an error unless this is set (--allow-foreign-imatrix), then a warning.
    bool allow_foreign_imatrix = false;
    // Already quantized tensors are requantized (dequantized, then quantized) with a warning instead of
    // refused: llama-quantize's --allow-requantize. Errors compound, so quality is below a quant made
    // from the f32/f16/bf16 model.
    bool allow_requantize = false;
};

// Chooses every type, matches imatrix entries and builds the output metadata. Throws
// quant::Error for what would make the output wrong (a mismatched imatrix entry, a split input,
// requantizing an already quantized tensor unless allowed, a type that cannot hold a tensor's rows).
// Warns when the recipe means nothing for the model (MXFP4_MOE without expert tensors).
QuantPlan make_plan(const gguf::File& input, const PlanInputs& inputs);

// Progress after each tensor is written: index (0-based) into plan.tensors.
using ProgressFn = std::function<void(size_t index, const QuantPlan& plan)>;

// Streams the quantized file to `out_path` (temp file, renamed when complete), tensor by tensor
// from the mapped input, holding only a bounded slab of rows in memory at a time. Rows are
// quantized on the OpenMP threads. Refuses to overwrite the input.
// `policy` says whether an existing output may be replaced; the input and the imatrix never are.
// Every tensor written, converted or copied, is checked for NaN/Inf (quant::Error names it).
void write_quantized(const gguf::File& input, const QuantPlan& plan, const Imatrix* imatrix,
                     const std::string& out_path, const ProgressFn& progress = {},
                     gguf::OutputPolicy policy = {});

}  // namespace quant
