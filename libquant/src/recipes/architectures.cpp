// The one place libquant names architectures: the rules of llama.cpp's quantizer that single out a
// model family rather than reading a shape from the metadata. Everything else in the recipes works
// from tensor names and counts, so a new architecture needs an entry here only when llama.cpp gives
// it a rule of its own.
#include "quant/recipe.h"

namespace quant {

bool ModelFacts::is_70b_class() const {
    // llama.cpp's model-size classes that rules key on: 80-layer Llama-2/3 70B (with GQA; the
    // MHA 65B is not one), and the 80-layer members of families derived from them.
    if (n_layer != 80) return false;
    if (arch == "llama") return n_head != n_head_kv;
    return arch == "deci" || arch == "qwen2";
}

bool ModelFacts::falcon_rules() const { return arch == "falcon"; }

bool ModelFacts::stacks_attention() const { return arch == "bailingmoe3"; }

}  // namespace quant
