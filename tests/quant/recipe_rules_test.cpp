// The recipe rule engine on synthetic models: the layer patterns, the shape-, GQA- and
// expert-dependent rules, output/embedding handling, fallbacks and user overrides. Expected
// types are llama.cpp's for the same model shapes.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "quant/recipe.h"

namespace {

using gguf::GgmlType;
using gguf::TensorInfo;
using T = GgmlType;

TensorInfo tensor(std::string name, std::vector<int64_t> dims, T type = T::BF16) {
    TensorInfo t;
    t.name = std::move(name);
    t.dims = std::move(dims);
    t.type = type;
    return t;
}

struct Shape {
    int n_layer = 8;
    int64_t n_embd = 256;
    int64_t n_ff = 768;
    int n_expert = 0;     // 0: dense
    bool tied = false;    // no output.weight
    bool shared_expert = false;
};

// A llama/qwen-style model: the tensors llama.cpp's converters write, 1-D ones in f32.
std::vector<TensorInfo> model(const Shape& s) {
    std::vector<TensorInfo> v = {tensor("token_embd.weight", {s.n_embd, 1024}),
                                 tensor("output_norm.weight", {s.n_embd}, T::F32)};
    if (!s.tied) v.push_back(tensor("output.weight", {s.n_embd, 1024}));
    for (int i = 0; i < s.n_layer; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        v.push_back(tensor(b + "attn_norm.weight", {s.n_embd}, T::F32));
        v.push_back(tensor(b + "attn_q.weight", {s.n_embd, s.n_embd}));
        v.push_back(tensor(b + "attn_k.weight", {s.n_embd, s.n_embd / 4}));
        v.push_back(tensor(b + "attn_v.weight", {s.n_embd, s.n_embd / 4}));
        v.push_back(tensor(b + "attn_output.weight", {s.n_embd, s.n_embd}));
        v.push_back(tensor(b + "ffn_norm.weight", {s.n_embd}, T::F32));
        if (s.n_expert > 0) {
            v.push_back(tensor(b + "ffn_gate_inp.weight", {s.n_embd, s.n_expert}, T::F32));
            v.push_back(tensor(b + "ffn_gate_exps.weight", {s.n_embd, s.n_ff, s.n_expert}));
            v.push_back(tensor(b + "ffn_up_exps.weight", {s.n_embd, s.n_ff, s.n_expert}));
            v.push_back(tensor(b + "ffn_down_exps.weight", {s.n_ff, s.n_embd, s.n_expert}));
            if (s.shared_expert) v.push_back(tensor(b + "ffn_down_shexp.weight", {s.n_ff, s.n_embd}));
        } else {
            v.push_back(tensor(b + "ffn_gate.weight", {s.n_embd, s.n_ff}));
            v.push_back(tensor(b + "ffn_up.weight", {s.n_embd, s.n_ff}));
            v.push_back(tensor(b + "ffn_down.weight", {s.n_ff, s.n_embd}));
        }
    }
    return v;
}

quant::ModelFacts facts(const Shape& s, uint32_t n_head = 8, uint32_t n_head_kv = 4, std::string arch = "llama") {
    quant::ModelFacts f;
    f.arch = std::move(arch);
    f.n_layer = static_cast<uint32_t>(s.n_layer);
    f.n_head = n_head;
    f.n_head_kv = n_head_kv;
    f.n_expert = static_cast<uint32_t>(s.n_expert);
    return f;
}

// Types by name, choosing in llama.cpp's order as the planner does.
std::map<std::string, quant::TypeChoice> choose(const char* recipe, const quant::ModelFacts& f,
                                                std::vector<TensorInfo> tensors, quant::RecipeOptions opt = {}) {
    std::vector<TensorInfo> ordered;
    for (size_t i : quant::quantization_order(tensors)) ordered.push_back(tensors[i]);
    const quant::Recipe* r = quant::find_recipe(recipe);
    EXPECT_NE(r, nullptr) << recipe;
    const auto choices = quant::choose_types(*r, f, opt, ordered);
    std::map<std::string, quant::TypeChoice> out;
    for (size_t i = 0; i < ordered.size(); ++i) out.emplace(ordered[i].name, choices[i]);
    return out;
}

T type_of(const std::map<std::string, quant::TypeChoice>& m, const std::string& name) { return m.at(name).type; }

// Layers of `role` (e.g. "attn_v.weight") that got `type`.
std::set<int> layers_with(const std::map<std::string, quant::TypeChoice>& m, const std::string& role, T type) {
    std::set<int> out;
    for (const auto& [name, c] : m) {
        if (name.rfind("blk.", 0) == 0 && name.find(role) != std::string::npos && c.type == type) {
            out.insert(std::stoi(name.substr(4)));
        }
    }
    return out;
}

TEST(RecipeTable, NamesAndFileTypesAreLlamaCpps) {
    EXPECT_EQ(quant::find_recipe("q4_k_m"), quant::find_recipe("Q4_K_M"));
    EXPECT_EQ(quant::find_recipe("Q4_K_Q"), nullptr);
    const std::map<std::string, uint32_t> ftypes = {
        {"F16", 1},    {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},    {"Q5_0", 8},    {"Q5_1", 9},
        {"Q2_K", 10},  {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q4_K_S", 14}, {"Q4_K_M", 15}, {"Q5_K_S", 16},
        {"Q5_K_M", 17}, {"Q6_K", 18},  {"IQ4_NL", 25}, {"IQ4_XS", 30}, {"BF16", 32},   {"MXFP4_MOE", 38},
        {"Q4_K_L", 15}, {"Q4_K", 15},
    };
    for (const auto& [name, ftype] : ftypes) {
        const quant::Recipe* r = quant::find_recipe(name);
        ASSERT_NE(r, nullptr) << name;
        EXPECT_EQ(static_cast<uint32_t>(r->file_type), ftype) << name;
    }
    const quant::Recipe* l = quant::find_recipe("Q4_K_L");
    EXPECT_EQ(l->base_type, T::Q4_K);
    EXPECT_EQ(l->token_embedding_type, T::Q8_0);
    EXPECT_EQ(l->output_type, T::Q8_0);
    for (const auto& r : quant::recipes()) EXPECT_TRUE(quant::is_weight_storage_type(r.base_type)) << r.name;
}

TEST(RecipeRules, OnlyMatrixWeightsAreTouched) {
    std::vector<TensorInfo> t = model({.n_layer = 2, .n_expert = 4});
    t.push_back(tensor("blk.0.attn_q.bias", {256, 2}));             // not a weight
    t.push_back(tensor("blk.0.attn_sinks.weight", {256, 1}));       // 1-D in ggml's eyes
    t.push_back(tensor("position_embd.weight", {256, 512}));        // position table
    t.push_back(tensor("blk.1.ssm_conv1d.weight", {4, 256}, T::F32));
    const auto m = choose("Q4_K_M", facts({.n_layer = 2, .n_expert = 4}), t);
    for (const char* kept : {"output_norm.weight", "blk.0.attn_norm.weight", "blk.1.ffn_gate_inp.weight",
                             "blk.0.attn_q.bias", "blk.0.attn_sinks.weight", "position_embd.weight",
                             "blk.1.ssm_conv1d.weight"}) {
        EXPECT_EQ(m.at(kept).source, quant::ChoiceSource::Kept) << kept;
        EXPECT_EQ(type_of(m, kept), (std::find_if(t.begin(), t.end(), [&](auto& x) { return x.name == kept; }))->type);
    }
    EXPECT_EQ(type_of(m, "blk.0.attn_q.weight"), T::Q4_K);
}

TEST(RecipeRules, Q4KMGivesMoreBitsToEndsAndEveryThirdLayer) {
    const Shape s{.n_layer = 32};
    const auto m = choose("Q4_K_M", facts(s), model(s));
    // Layers < n/8, >= 7n/8, and (i - n/8) % 3 == 2 between.
    const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    EXPECT_EQ(layers_with(m, "attn_v.weight", T::Q6_K), more);
    EXPECT_EQ(layers_with(m, "ffn_down.weight", T::Q6_K), more);
    EXPECT_EQ(layers_with(m, "ffn_down.weight", T::Q4_K).size(), 32u - more.size());
    EXPECT_EQ(layers_with(m, "ffn_up.weight", T::Q4_K).size(), 32u);
    EXPECT_EQ(type_of(m, "output.weight"), T::Q6_K);
    EXPECT_EQ(type_of(m, "token_embd.weight"), T::Q4_K);
}

TEST(RecipeRules, Q3KMAndQ4KSProtectTheFirstLayers) {
    const Shape s{.n_layer = 32};
    auto m = choose("Q3_K_M", facts(s), model(s));
    EXPECT_EQ(layers_with(m, "attn_v.weight", T::Q5_K), (std::set<int>{0, 1}));
    EXPECT_EQ(layers_with(m, "attn_v.weight", T::Q4_K).size(), 30u);
    EXPECT_EQ(layers_with(m, "ffn_down.weight", T::Q5_K), (std::set<int>{0, 1}));  // < n/16
    EXPECT_EQ(layers_with(m, "ffn_down.weight", T::Q4_K).size(), 30u);
    EXPECT_EQ(layers_with(m, "attn_output.weight", T::Q4_K).size(), 32u);
    EXPECT_EQ(layers_with(m, "attn_q.weight", T::Q3_K).size(), 32u);

    // Falcon keeps Q3_K on the ffn_down layers that do not get more bits.
    m = choose("Q3_K_M", facts(s, 8, 4, "falcon"), model(s));
    EXPECT_EQ(layers_with(m, "ffn_down.weight", T::Q3_K).size(), 32u - 2u - 14u);
    EXPECT_EQ(type_of(m, "output.weight"), T::Q8_0);

    m = choose("Q4_K_S", facts(s), model(s));
    EXPECT_EQ(layers_with(m, "attn_v.weight", T::Q5_K), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(layers_with(m, "ffn_down.weight", T::Q5_K), (std::set<int>{0, 1, 2, 3}));  // < n/8
}

TEST(RecipeRules, GroupedQueryAttentionRaisesTheValueProjection) {
    const Shape s{.n_layer = 4};
    // 8 query heads per KV head: attn_v is small, so it gets more bits.
    EXPECT_EQ(type_of(choose("Q2_K", facts(s, 32, 4), model(s)), "blk.1.attn_v.weight"), T::Q4_K);
    EXPECT_EQ(type_of(choose("Q2_K", facts(s, 8, 4), model(s)), "blk.1.attn_v.weight"), T::Q3_K);
    EXPECT_EQ(type_of(choose("IQ4_XS", facts(s, 32, 8), model(s)), "blk.1.attn_v.weight"), T::Q5_K);
    EXPECT_EQ(type_of(choose("IQ4_XS", facts(s, 8, 4), model(s)), "blk.1.attn_v.weight"), T::IQ4_XS);
    // Q2_K always lifts ffn_down and attn_output one step.
    const auto m = choose("Q2_K", facts(s), model(s));
    EXPECT_EQ(type_of(m, "blk.3.ffn_down.weight"), T::Q3_K);
    EXPECT_EQ(type_of(m, "blk.3.attn_output.weight"), T::Q3_K);
    EXPECT_EQ(type_of(m, "blk.3.ffn_up.weight"), T::Q2_K);
}

TEST(RecipeRules, EightExpertModelsKeepAttentionLarge) {
    const Shape s{.n_layer = 4, .n_expert = 8};
    const auto m = choose("Q4_K_M", facts(s), model(s));
    EXPECT_EQ(type_of(m, "blk.0.attn_v.weight"), T::Q8_0);
    EXPECT_EQ(type_of(m, "blk.0.attn_k.weight"), T::Q8_0);
    EXPECT_EQ(type_of(m, "blk.0.attn_output.weight"), T::Q5_K);
    EXPECT_EQ(type_of(m, "blk.0.attn_q.weight"), T::Q4_K);
    // Other expert counts do not trigger it.
    const Shape s16{.n_layer = 4, .n_expert = 16};
    EXPECT_EQ(type_of(choose("Q4_K_M", facts(s16), model(s16)), "blk.0.attn_k.weight"), T::Q4_K);
}

TEST(RecipeRules, SeventyBClassLiftsLowBitValues) {
    const Shape s{.n_layer = 80, .n_embd = 256};
    EXPECT_EQ(type_of(choose("Q3_K_S", facts(s, 64, 8), model(s)), "blk.40.attn_v.weight"), T::Q5_K);
    // The 80-layer model without GQA (65B) is not one.
    EXPECT_EQ(type_of(choose("Q3_K_S", facts(s, 64, 64), model(s)), "blk.40.attn_v.weight"), T::Q3_K);
}

TEST(RecipeRules, OutputHeadAndTiedEmbeddings) {
    const Shape s{.n_layer = 2};
    auto m = choose("Q4_K_M", facts(s), model(s));
    EXPECT_EQ(type_of(m, "output.weight"), T::Q6_K);
    EXPECT_EQ(type_of(m, "token_embd.weight"), T::Q4_K);
    // Without output.weight the embedding is the output head and is treated as one.
    const Shape tied{.n_layer = 2, .tied = true};
    EXPECT_EQ(type_of(choose("Q4_K_M", facts(tied), model(tied)), "token_embd.weight"), T::Q6_K);
    EXPECT_EQ(type_of(choose("Q8_0", facts(s), model(s)), "output.weight"), T::Q8_0);
    m = choose("IQ2_XXS", facts(s), model(s));
    EXPECT_EQ(type_of(m, "output.weight"), T::Q5_K);
    EXPECT_EQ(type_of(m, "token_embd.weight"), T::Q2_K);
    m = choose("MXFP4_MOE", facts(s), model(s));
    EXPECT_EQ(type_of(m, "output.weight"), T::Q8_0);
    EXPECT_EQ(type_of(m, "token_embd.weight"), T::Q8_0);
    // A head whose rows do not fit the base type's blocks is kept at Q8_0.
    const Shape odd{.n_layer = 2, .n_embd = 288};
    EXPECT_EQ(type_of(choose("Q4_K_M", facts(odd), model(odd)), "output.weight"), T::Q8_0);
}

TEST(RecipeRules, RowsThatDoNotFitFallBackLikeLlamaCpp) {
    // 288 = 9 x 32: K-quant and 256-block IQ types fall back to a 32-block type.
    const Shape s{.n_layer = 2, .n_embd = 288, .n_ff = 96 * 8};
    const std::vector<std::pair<const char*, T>> cases = {
        {"Q4_K_S", T::Q5_0}, {"Q5_K_S", T::Q5_1}, {"Q6_K", T::Q8_0}, {"Q2_K", T::Q4_0}, {"Q3_K_S", T::Q4_0},
        {"IQ4_XS", T::IQ4_NL},
    };
    for (const auto& [recipe, fallback] : cases) {
        const auto m = choose(recipe, facts(s), model(s));
        const auto& c = m.at("blk.1.attn_q.weight");
        EXPECT_EQ(c.type, fallback) << recipe;
        ASSERT_TRUE(c.fallback_from.has_value()) << recipe;
        EXPECT_EQ(*c.fallback_from, quant::find_recipe(recipe)->base_type);
    }
    // Rows not a multiple of 32 either (ffn_down rows of 100): f16.
    const Shape tiny{.n_layer = 1, .n_embd = 256, .n_ff = 100};
    EXPECT_EQ(type_of(choose("Q4_K_M", facts(tiny), model(tiny)), "blk.0.ffn_down.weight"), T::F16);
    // Types with 32-blocks have no fallback: llama.cpp refuses, so do we.
    EXPECT_THROW(choose("Q8_0", facts(tiny), model(tiny)), quant::Error);
    EXPECT_THROW(choose("Q4_0", facts(tiny), model(tiny)), quant::Error);
}

TEST(RecipeRules, OverridesFirstMatchWinsAndFallBack) {
    const Shape s{.n_layer = 4};
    quant::RecipeOptions opt;
    opt.overrides = {{"attn_v", T::Q8_0}, {"attn_.*", T::Q5_K}, {"blk\\.3\\.ffn", T::IQ4_NL}};
    auto m = choose("Q4_K_M", facts(s), model(s), opt);
    EXPECT_EQ(type_of(m, "blk.0.attn_v.weight"), T::Q8_0);
    EXPECT_EQ(m.at("blk.0.attn_v.weight").source, quant::ChoiceSource::Override);
    EXPECT_EQ(type_of(m, "blk.0.attn_k.weight"), T::Q5_K);
    EXPECT_EQ(type_of(m, "blk.3.ffn_down.weight"), T::IQ4_NL);
    EXPECT_EQ(type_of(m, "blk.1.ffn_down.weight"), T::Q4_K);  // rules still apply elsewhere
    EXPECT_EQ(type_of(m, "blk.2.ffn_down.weight"), T::Q6_K);
    // Overridden tensors are not counted by the rules (as in llama.cpp): with blk.0's attn_v
    // overridden, the others are ranked 0..2 of 4, which moves the extra bits from blk.2 to blk.3.
    EXPECT_EQ(layers_with(choose("Q4_K_M", facts(s), model(s)), "attn_v", T::Q6_K), (std::set<int>{2, 3}));
    quant::RecipeOptions first_v;
    first_v.overrides = {{"blk\\.0\\.attn_v", T::Q8_0}};
    EXPECT_EQ(layers_with(choose("Q4_K_M", facts(s), model(s), first_v), "attn_v", T::Q6_K), (std::set<int>{3}));

    // Float recipes are plain conversions: llama.cpp ignores the patterns there.
    m = choose("F16", facts(s), model(s), opt);
    EXPECT_EQ(type_of(m, "blk.0.attn_v.weight"), T::F16);

    // An override whose blocks do not fit falls back like a rule's choice; one that cannot, fails.
    const Shape odd{.n_layer = 1, .n_embd = 288};
    opt.overrides = {{"attn_q", T::Q4_K}};
    EXPECT_EQ(type_of(choose("Q8_0", facts(odd), model(odd), opt), "blk.0.attn_q.weight"), T::Q5_0);
    const Shape tiny{.n_layer = 1, .n_embd = 256, .n_ff = 100};
    opt.overrides = {{".*", T::Q8_0}};
    EXPECT_THROW(choose("Q4_K_M", facts(tiny), model(tiny), opt), quant::Error);
    opt.overrides = {{"attn_(", T::Q8_0}};
    EXPECT_THROW(choose("Q4_K_M", facts(s), model(s), opt), quant::Error);
    opt.overrides = {{"attn_q", T::Q8_K}};
    EXPECT_THROW(choose("Q4_K_M", facts(s), model(s), opt), quant::Error);
}

TEST(RecipeRules, PureAndTypeOptions) {
    const Shape s{.n_layer = 4};
    quant::RecipeOptions opt;
    opt.pure = true;
    auto m = choose("Q4_K_M", facts(s), model(s), opt);
    for (const auto& [name, c] : m) {
        if (c.source != quant::ChoiceSource::Kept) {
            EXPECT_EQ(c.type, T::Q4_K) << name;
        }
    }
    opt = {};
    opt.token_embedding_type = T::Q8_0;
    opt.output_tensor_type = T::BF16;
    m = choose("Q4_K_M", facts(s), model(s), opt);
    EXPECT_EQ(type_of(m, "token_embd.weight"), T::Q8_0);
    EXPECT_EQ(type_of(m, "output.weight"), T::BF16);
    EXPECT_EQ(m.at("output.weight").source, quant::ChoiceSource::Option);
    // Q4_K_L's presets are options the user's own override.
    m = choose("Q4_K_L", facts(s), model(s), opt);
    EXPECT_EQ(type_of(m, "output.weight"), T::BF16);
    EXPECT_EQ(type_of(choose("Q4_K_L", facts(s), model(s)), "output.weight"), T::Q8_0);
    // An explicit type must hold the rows as they are.
    const Shape odd{.n_layer = 1, .n_embd = 288};
    opt.token_embedding_type = T::Q4_K;
    EXPECT_THROW(choose("Q4_K_M", facts(odd), model(odd), opt), quant::Error);
}

TEST(RecipeRules, ImportanceMatrixChangesSomeChoices) {
    const Shape s{.n_layer = 16};
    quant::RecipeOptions with;
    with.have_imatrix = true;
    // Q4_0: the first n/8 ffn_down layers go to Q4_1, but only with an imatrix.
    EXPECT_EQ(layers_with(choose("Q4_0", facts(s), model(s), with), "ffn_down", T::Q4_1), (std::set<int>{0, 1}));
    EXPECT_TRUE(layers_with(choose("Q4_0", facts(s), model(s)), "ffn_down", T::Q4_1).empty());
    EXPECT_EQ(layers_with(choose("Q5_0", facts(s), model(s), with), "ffn_down", T::Q5_1), (std::set<int>{0, 1}));
    // IQ4_XS: the first n/8 ffn_down layers go to Q5_K, but only without one.
    EXPECT_EQ(layers_with(choose("IQ4_XS", facts(s), model(s)), "ffn_down", T::Q5_K), (std::set<int>{0, 1}));
    EXPECT_TRUE(layers_with(choose("IQ4_XS", facts(s), model(s), with), "ffn_down", T::Q5_K).empty());
}

TEST(RecipeRules, VeryLowBitTypesRequireAnImatrix) {
    const Shape s{.n_layer = 8};
    auto m = choose("IQ2_XXS", facts(s), model(s));
    EXPECT_TRUE(m.at("blk.3.ffn_up.weight").requires_imatrix);
    EXPECT_EQ(type_of(m, "blk.3.ffn_up.weight"), T::IQ2_XXS);
    EXPECT_EQ(type_of(m, "blk.0.ffn_down.weight"), T::Q2_K);  // first n/8 ffn_down
    EXPECT_FALSE(m.at("blk.0.ffn_down.weight").requires_imatrix);
    EXPECT_FALSE(m.at("token_embd.weight").requires_imatrix);
    EXPECT_FALSE(m.at("output.weight").requires_imatrix);
    // Q2_K tensors need one in a Q2_K_S file only.
    EXPECT_TRUE(choose("Q2_K_S", facts(s), model(s)).at("blk.3.ffn_up.weight").requires_imatrix);
    EXPECT_FALSE(choose("Q2_K", facts(s), model(s)).at("blk.3.ffn_up.weight").requires_imatrix);
}

TEST(RecipeRules, MoeLayersComeFromTheNameAndExpertsGetMxfp4) {
    const Shape s{.n_layer = 8, .n_expert = 4, .shared_expert = true};
    auto m = choose("Q4_K_M", facts(s), model(s));
    // Both ffn_down tensors of a layer count as that layer: {i < 1, i >= 7, (i - 1) % 3 == 2}.
    EXPECT_EQ(layers_with(m, "ffn_down_exps", T::Q6_K), (std::set<int>{0, 3, 6, 7}));
    EXPECT_EQ(layers_with(m, "ffn_down_shexp", T::Q6_K), (std::set<int>{0, 3, 6, 7}));

    m = choose("MXFP4_MOE", facts(s), model(s));
    EXPECT_EQ(type_of(m, "blk.2.ffn_up_exps.weight"), T::MXFP4);
    EXPECT_EQ(type_of(m, "blk.2.ffn_down_exps.weight"), T::MXFP4);
    EXPECT_EQ(type_of(m, "blk.2.ffn_down_shexp.weight"), T::Q8_0);
    EXPECT_EQ(type_of(m, "blk.2.attn_q.weight"), T::Q8_0);
    EXPECT_EQ(type_of(m, "blk.2.ffn_gate_inp.weight"), T::F32);

    // Where the architecture stacks attention in 3-D tensors too (bailingmoe3), only the FFN ones
    // are experts; elsewhere every stacked tensor is.
    auto stacked = model(s);
    stacked.push_back(tensor("blk.2.attn_q_stacked.weight", {256, 256, 4}));
    EXPECT_EQ(type_of(choose("MXFP4_MOE", facts(s, 8, 4, "bailingmoe3"), stacked), "blk.2.attn_q_stacked.weight"),
              T::Q8_0);
    EXPECT_EQ(type_of(choose("MXFP4_MOE", facts(s), stacked), "blk.2.attn_q_stacked.weight"), T::MXFP4);
    EXPECT_EQ(type_of(choose("MXFP4_MOE", facts(s, 8, 4, "bailingmoe3"), stacked), "blk.2.ffn_up_exps.weight"),
              T::MXFP4);

    // An expert tensor must say its layer.
    auto t = model(s);
    t.push_back(tensor("mtp.ffn_down_exps.weight", {768, 256, 4}));
    EXPECT_THROW(choose("Q4_K_M", facts(s), t), quant::Error);
}

TEST(RecipeRules, QuantizationOrderIsByLayerThenName) {
    const std::vector<TensorInfo> t = {tensor("blk.10.a", {1}), tensor("blk.9.b", {1}), tensor("output.weight", {1}),
                                       tensor("blk.9.a", {1}), tensor("token_embd.weight", {1})};
    const auto order = quant::quantization_order(t);
    std::vector<std::string> names;
    for (size_t i : order) names.push_back(t[i].name);
    EXPECT_EQ(names, (std::vector<std::string>{"output.weight", "token_embd.weight", "blk.9.a", "blk.9.b", "blk.10.a"}));
}

TEST(ModelFactsTest, ReadsScalarAndPerLayerCounts) {
    gguf::Metadata md;
    md.set("general.architecture", gguf::Value::string("qwen3moe"));
    md.set("qwen3moe.block_count", gguf::Value::u32(4));
    md.set("qwen3moe.attention.head_count", gguf::Value::i32_array({16, 16, 16, 16}));
    md.set("qwen3moe.expert_count", gguf::Value::u32(128));
    auto f = quant::ModelFacts::from_metadata(md);
    EXPECT_EQ(f.arch, "qwen3moe");
    EXPECT_EQ(f.n_layer, 4u);
    EXPECT_EQ(f.n_head, 16u);
    EXPECT_EQ(f.n_head_kv, 16u);  // absent: as many KV heads as query heads
    EXPECT_EQ(f.gqa(), 1u);
    EXPECT_EQ(f.n_expert, 128u);
    md.set("qwen3moe.attention.head_count_kv", gguf::Value::u32(4));
    f = quant::ModelFacts::from_metadata(md);
    EXPECT_EQ(f.gqa(), 4u);
    EXPECT_FALSE(f.is_70b_class());
}

}  // namespace
