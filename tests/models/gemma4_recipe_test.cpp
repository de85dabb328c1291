// gguf-quantize's recipes on Gemma 4 26B-A4B's real tensor list (gguf-synth's gemma-4-26b-a4b preset):
// the types llama.cpp's llama-quant.cpp gives, worked out from its rules by hand (no llama-quantize
// run on a gemma4 file has come back yet; make_gemma4_reference.py's request asks for one). What
// matters for gemma4: 25 attn_v tensors (the full layers have none) set the running count of the
// value rule; the dense ffn_down (2112) and the experts' ffn_down_exps (704) rows are not multiples of
// 256, so K-quants fall back (Q4_K -> Q5_0, Q6_K -> Q8_0); the experts' fused gate_up is an ffn_gate
// tensor; the tied embedding is the output head; 1-D tensors, norms, the router and the .scale tensors
// stay as they are.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "model_shapes.h"
#include "quant/recipe.h"

namespace {

using gguf::GgmlType;

std::map<std::string, GgmlType> types_for(const char* recipe_name) {
    const synth::ModelSpec m = synth::gemma4_model("gemma-4-26b-a4b", {});
    std::vector<gguf::TensorInfo> infos;
    for (const auto& t : m.tensors) infos.push_back({t.name, GgmlType::BF16, t.dims, 0});
    const quant::Recipe* recipe = quant::find_recipe(recipe_name);
    EXPECT_NE(recipe, nullptr);
    const auto choices = quant::choose_types(*recipe, quant::ModelFacts::from_metadata(m.metadata), {}, infos);
    std::map<std::string, GgmlType> out;
    for (size_t i = 0; i < infos.size(); ++i) out[infos[i].name] = choices[i].type;
    return out;
}

// llama-quant.cpp's use_more_bits(i, n)
bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

TEST(Gemma4Recipe, Q4_K_M) {
    const auto t = types_for("Q4_K_M");
    EXPECT_EQ(t.size(), 3u + 30u * 22u - 5u);
    EXPECT_EQ(t.at("token_embd.weight"), GgmlType::Q6_K);  // tied: the output head's rule
    EXPECT_EQ(t.at("rope_freqs.weight"), GgmlType::BF16);  // 1-D: kept
    int i_v = 0;
    for (int il = 0; il < 30; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        const bool swa = il % 6 != 5;
        EXPECT_EQ(t.at(b + "attn_q.weight"), GgmlType::Q4_K) << il;
        EXPECT_EQ(t.at(b + "attn_k.weight"), GgmlType::Q4_K) << il;
        EXPECT_EQ(t.at(b + "attn_output.weight"), GgmlType::Q4_K) << il;
        if (swa) {
            EXPECT_EQ(t.at(b + "attn_v.weight"), more_bits(i_v, 25) ? GgmlType::Q6_K : GgmlType::Q4_K) << il;
            ++i_v;
        } else {
            EXPECT_EQ(t.count(b + "attn_v.weight"), 0u);
        }
        EXPECT_EQ(t.at(b + "ffn_gate.weight"), GgmlType::Q4_K) << il;
        EXPECT_EQ(t.at(b + "ffn_up.weight"), GgmlType::Q4_K) << il;
        EXPECT_EQ(t.at(b + "ffn_gate_up_exps.weight"), GgmlType::Q4_K) << il;
        // MoE: ffn_down ranked by the layer in its name; rows of 2112 and 704 take the 32-block fallback
        const GgmlType down = more_bits(il, 30) ? GgmlType::Q8_0 : GgmlType::Q5_0;
        EXPECT_EQ(t.at(b + "ffn_down.weight"), down) << il;
        EXPECT_EQ(t.at(b + "ffn_down_exps.weight"), down) << il;
        for (const char* kept : {"ffn_gate_inp.weight", "ffn_gate_inp.scale", "ffn_down_exps.scale",
                                 "layer_output_scale.weight", "attn_norm.weight", "post_ffw_norm_2.weight"}) {
            EXPECT_EQ(t.at(b + kept), GgmlType::BF16) << b + kept;
        }
    }
}

TEST(Gemma4Recipe, Q8_0AndQ6_K) {
    const auto q8 = types_for("Q8_0");
    EXPECT_EQ(q8.at("token_embd.weight"), GgmlType::Q8_0);
    EXPECT_EQ(q8.at("blk.0.ffn_down_exps.weight"), GgmlType::Q8_0);
    EXPECT_EQ(q8.at("blk.5.attn_k.weight"), GgmlType::Q8_0);
    EXPECT_EQ(q8.at("blk.0.ffn_gate_inp.weight"), GgmlType::BF16);
    const auto q6 = types_for("Q6_K");
    EXPECT_EQ(q6.at("token_embd.weight"), GgmlType::Q6_K);
    EXPECT_EQ(q6.at("blk.0.attn_q.weight"), GgmlType::Q6_K);
    EXPECT_EQ(q6.at("blk.0.ffn_gate_up_exps.weight"), GgmlType::Q6_K);
    EXPECT_EQ(q6.at("blk.0.ffn_down.weight"), GgmlType::Q8_0);       // 2112 % 256 != 0
    EXPECT_EQ(q6.at("blk.0.ffn_down_exps.weight"), GgmlType::Q8_0);  // 704 % 256 != 0
}

TEST(Gemma4Recipe, Mxfp4Moe) {
    const auto t = types_for("MXFP4_MOE");
    EXPECT_EQ(t.at("blk.3.ffn_gate_up_exps.weight"), GgmlType::MXFP4);
    EXPECT_EQ(t.at("blk.3.ffn_down_exps.weight"), GgmlType::MXFP4);
    EXPECT_EQ(t.at("blk.3.ffn_down.weight"), GgmlType::Q8_0);  // the dense MLP is not an expert stack
    EXPECT_EQ(t.at("blk.3.attn_v.weight"), GgmlType::Q8_0);
    EXPECT_EQ(t.at("token_embd.weight"), GgmlType::Q8_0);
}

}  // namespace
