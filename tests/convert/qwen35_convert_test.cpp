// Qwen3.5-MoE checkpoints to GGUF as llama.cpp's converter (conversion/qwen.py, Qwen3_5MoeTextModel)
// lays them out, on a small multimodal checkpoint made here (the released class, names under
// model.language_model., experts one tensor each, a vision tower and an MTP block to leave out):
// the value heads of the linear-attention tensors reordered from grouped to tiled, -exp(A_log), the
// squeezed convolution, 1 + w for the RMSNorms but the gated one, stacked experts, and the keys.
// transformers' fused expert layout is covered by tests/models/qwen35 (the tiny reference).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "convert/converter.h"
#include "gguf/file.h"
#include "hf_checkpoint.h"

using namespace hf_test;

namespace {

// 2 layers (linear, full), 2 key heads and 4 value heads of 4: value head order after the reorder
// is 0, 2, 1, 3 of the checkpoint's (output head j * n_k + k is the checkpoint's k * 2 + j).
constexpr int kHidden = 32, kKHeads = 2, kVHeads = 4, kHeadK = 4, kHeadV = 4, kExperts = 2, kFf = 8, kShared = 8;
constexpr int kKeyDim = kKHeads * kHeadK, kValueDim = kVHeads * kHeadV, kConvDim = 2 * kKeyDim + kValueDim;
constexpr int kTiled[kVHeads] = {0, 2, 1, 3};

std::vector<TensorSpec> tensors() {
    const std::string m = "model.language_model.";
    std::vector<TensorSpec> t = {{m + "embed_tokens.weight", "F32", {8, kHidden}, {}},
                                 {m + "norm.weight", "F32", {kHidden}, {}},
                                 {"lm_head.weight", "F32", {8, kHidden}, {}},
                                 {"model.visual.blocks.0.attn.qkv.weight", "F32", {6, 4}, {}},
                                 {"mtp.fc.weight", "F32", {kHidden, 2 * kHidden}, {}}};
    for (int l = 0; l < 2; ++l) {
        const std::string p = m + "layers." + std::to_string(l) + ".";
        t.push_back({p + "input_layernorm.weight", "F32", {kHidden}, {}});
        t.push_back({p + "post_attention_layernorm.weight", "F32", {kHidden}, {}});
        if (l == 0) {
            const std::string a = p + "linear_attn.";
            t.push_back({a + "in_proj_qkv.weight", "F32", {kConvDim, kHidden}, {}});
            t.push_back({a + "in_proj_z.weight", "F32", {kValueDim, kHidden}, {}});
            t.push_back({a + "in_proj_b.weight", "F32", {kVHeads, kHidden}, {}});
            t.push_back({a + "in_proj_a.weight", "F32", {kVHeads, kHidden}, {}});
            t.push_back({a + "conv1d.weight", "F32", {kConvDim, 1, 4}, {}});
            t.push_back({a + "dt_bias", "F32", {kVHeads}, {}});
            t.push_back({a + "A_log", "F32", {kVHeads}, {}});
            t.push_back({a + "norm.weight", "F32", {kHeadV}, {}});
            t.push_back({a + "out_proj.weight", "F32", {kHidden, kValueDim}, {}});
        } else {
            const std::string s = p + "self_attn.";
            t.push_back({s + "q_proj.weight", "F32", {2 * 2 * 16, kHidden}, {}});
            t.push_back({s + "k_proj.weight", "F32", {16, kHidden}, {}});
            t.push_back({s + "v_proj.weight", "F32", {16, kHidden}, {}});
            t.push_back({s + "o_proj.weight", "F32", {kHidden, 2 * 16}, {}});
            t.push_back({s + "q_norm.weight", "F32", {16}, {}});
            t.push_back({s + "k_norm.weight", "F32", {16}, {}});
        }
        t.push_back({p + "mlp.gate.weight", "F32", {kExperts, kHidden}, {}});
        t.push_back({p + "mlp.shared_expert_gate.weight", "F32", {1, kHidden}, {}});
        for (const char* n : {"gate_proj", "up_proj"}) {
            t.push_back({p + "mlp.shared_expert." + n + ".weight", "F32", {kShared, kHidden}, {}});
        }
        t.push_back({p + "mlp.shared_expert.down_proj.weight", "F32", {kHidden, kShared}, {}});
        for (int e = 0; e < kExperts; ++e) {
            const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
            t.push_back({q + "down_proj.weight", "F32", {kHidden, kFf}, {}});
            t.push_back({q + "gate_proj.weight", "F32", {kFf, kHidden}, {}});
            t.push_back({q + "up_proj.weight", "F32", {kFf, kHidden}, {}});
        }
    }
    return t;
}

std::string config() {
    return R"({"architectures":["Qwen3_5MoeForConditionalGeneration"],"model_type":"qwen3_5_moe",
      "vision_config":{"depth":1,"hidden_size":4},
      "text_config":{"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,
        "head_dim":16,"max_position_embeddings":1024,"rms_norm_eps":1e-06,"vocab_size":8,
        "linear_conv_kernel_dim":4,"linear_key_head_dim":4,"linear_value_head_dim":4,"linear_num_key_heads":2,
        "linear_num_value_heads":4,"full_attention_interval":2,"num_experts":2,"num_experts_per_tok":1,
        "moe_intermediate_size":8,"shared_expert_intermediate_size":8,"mtp_num_hidden_layers":1,
        "rope_parameters":{"rope_type":"default","rope_theta":10000000,"partial_rotary_factor":0.25,
          "mrope_section":[1,1,0],"mrope_interleaved":true}}})";
}

struct Converted {
    TempDir dir{"qwen35"};
    std::vector<TensorSpec> specs = tensors();
    convert::ConvertSummary summary;
    gguf::File file;

    Converted() : file(make()) {}
    gguf::File make() {
        write_file(dir / "config.json", config());
        write_safetensors(dir / "model.safetensors", specs);
        write_file(dir / "tokenizer.json", tokenizer_json());
        convert::ConvertOptions opt;
        opt.input_dir = dir.path.string();
        opt.output_path = (dir / "out.gguf").string();
        opt.outtype = convert::OutType::F32;
        summary = convert::convert_checkpoint(opt);
        return gguf::File::open(opt.output_path);
    }
    std::vector<float> source(const std::string& name) const {
        for (const auto& s : specs)
            if (s.name == name) return pattern(s.name, n_elements(s.shape));
        ADD_FAILURE() << name;
        return {};
    }
    std::vector<float> output(const std::string& name) const {
        const auto& info = file.tensor(name);
        const auto bytes = file.tensor_data(info);
        std::vector<float> v(bytes.size() / 4);
        std::memcpy(v.data(), bytes.data(), bytes.size());
        return v;
    }
};

const std::string L0 = "model.language_model.layers.0.";

TEST(ConvertQwen35, LinearAttentionTensorsAreTransformedAsLlamaCpp) {
    Converted c;
    // q and k channels keep their rows; value rows move by head
    const auto qkv = c.output("blk.0.attn_qkv.weight"), qkv_src = c.source(L0 + "linear_attn.in_proj_qkv.weight");
    ASSERT_EQ(qkv.size(), qkv_src.size());
    for (int r = 0; r < kConvDim; ++r) {
        const int src = r < 2 * kKeyDim ? r : 2 * kKeyDim + kTiled[(r - 2 * kKeyDim) / kHeadV] * kHeadV + (r - 2 * kKeyDim) % kHeadV;
        for (int i = 0; i < kHidden; ++i) ASSERT_EQ(qkv[r * kHidden + i], qkv_src[src * kHidden + i]) << r;
    }
    const auto z = c.output("blk.0.attn_gate.weight"), z_src = c.source(L0 + "linear_attn.in_proj_z.weight");
    for (int r = 0; r < kValueDim; ++r)
        for (int i = 0; i < kHidden; ++i)
            ASSERT_EQ(z[r * kHidden + i], z_src[(kTiled[r / kHeadV] * kHeadV + r % kHeadV) * kHidden + i]);
    const auto beta = c.output("blk.0.ssm_beta.weight"), beta_src = c.source(L0 + "linear_attn.in_proj_b.weight");
    for (int h = 0; h < kVHeads; ++h)
        for (int i = 0; i < kHidden; ++i) ASSERT_EQ(beta[h * kHidden + i], beta_src[kTiled[h] * kHidden + i]);
    const auto a = c.output("blk.0.ssm_a"), a_src = c.source(L0 + "linear_attn.A_log");
    const auto dt = c.output("blk.0.ssm_dt.bias"), dt_src = c.source(L0 + "linear_attn.dt_bias");
    for (int h = 0; h < kVHeads; ++h) {
        EXPECT_EQ(a[h], -std::exp(a_src[kTiled[h]]));
        EXPECT_EQ(dt[h], dt_src[kTiled[h]]);
    }
    // the convolution squeezed to [channels, taps], value channels reordered
    EXPECT_EQ(c.file.tensor("blk.0.ssm_conv1d.weight").dims, (std::vector<int64_t>{4, kConvDim}));
    const auto conv = c.output("blk.0.ssm_conv1d.weight"), conv_src = c.source(L0 + "linear_attn.conv1d.weight");
    for (int ch = 2 * kKeyDim; ch < kConvDim; ++ch) {
        const int v = ch - 2 * kKeyDim, src = 2 * kKeyDim + kTiled[v / kHeadV] * kHeadV + v % kHeadV;
        for (int j = 0; j < 4; ++j) ASSERT_EQ(conv[ch * 4 + j], conv_src[src * 4 + j]);
    }
    // the output projection's columns
    const auto out = c.output("blk.0.ssm_out.weight"), out_src = c.source(L0 + "linear_attn.out_proj.weight");
    for (int r = 0; r < kHidden; ++r)
        for (int v = 0; v < kValueDim; ++v)
            ASSERT_EQ(out[r * kValueDim + v], out_src[r * kValueDim + kTiled[v / kHeadV] * kHeadV + v % kHeadV]);
    // 1 + w for the RMSNorms, not for the gated one
    const auto norm = c.output("blk.0.attn_norm.weight"), norm_src = c.source(L0 + "input_layernorm.weight");
    for (int i = 0; i < kHidden; ++i) EXPECT_EQ(norm[i], norm_src[i] + 1.0f);
    EXPECT_EQ(c.output("blk.0.ssm_norm.weight"), c.source(L0 + "linear_attn.norm.weight"));
    const auto qn = c.output("blk.1.attn_q_norm.weight"),
               qn_src = c.source("model.language_model.layers.1.self_attn.q_norm.weight");
    for (int i = 0; i < 16; ++i) EXPECT_EQ(qn[i], qn_src[i] + 1.0f);
    EXPECT_EQ(c.file.tensor("blk.0.post_attention_norm.weight").type, gguf::GgmlType::F32);
}

TEST(ConvertQwen35, ExpertsAreStackedAndTheRestIsLeftOutWithWarnings) {
    Converted c;
    const auto down = c.output("blk.1.ffn_down_exps.weight");
    EXPECT_EQ(c.file.tensor("blk.1.ffn_down_exps.weight").dims, (std::vector<int64_t>{kFf, kHidden, kExperts}));
    const auto e1 = c.source("model.language_model.layers.1.mlp.experts.1.down_proj.weight");
    EXPECT_TRUE(std::equal(e1.begin(), e1.end(), down.begin() + kHidden * kFf));
    EXPECT_EQ(c.file.tensor("blk.0.ffn_gate_inp_shexp.weight").dims, (std::vector<int64_t>{kHidden, 1}));
    EXPECT_TRUE(c.file.find_tensor("blk.0.ffn_up_shexp.weight"));
    for (const auto& t : c.file.tensors()) {
        EXPECT_EQ(t.name.find("visual"), std::string::npos) << t.name;
        EXPECT_EQ(t.name.find("nextn"), std::string::npos) << t.name;
    }
    EXPECT_FALSE(c.file.find_tensor("blk.2.attn_norm.weight"));
    int mentions = 0;
    for (const auto& w : c.summary.warnings) mentions += w.find("mtp") != std::string::npos || w.find("vision") != std::string::npos;
    EXPECT_EQ(mentions, 2);
}

TEST(ConvertQwen35, MetadataAsLlamaCpp) {
    Converted c;
    const auto& m = c.file.metadata();
    EXPECT_EQ(m.get_string("general.architecture"), "qwen35moe");
    EXPECT_EQ(m.get_u32("qwen35moe.block_count"), 2u);  // without the MTP block (llama.cpp's --no-mtp)
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.conv_kernel"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.inner_size"), 16u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.time_step_rank"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.group_count"), 2u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.state_size"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.full_attention_interval"), 2u);
    EXPECT_EQ(m.get_u32("qwen35moe.rope.dimension_count"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.expert_shared_feed_forward_length"), 8u);
    const gguf::Value* sections = m.find("qwen35moe.rope.dimension_sections");
    ASSERT_NE(sections, nullptr);
    EXPECT_EQ(sections->to_display(), gguf::Value::i32_array({1, 1, 0, 0}).to_display());
    EXPECT_FALSE(m.find("qwen35moe.nextn_predict_layers"));
}

}  // namespace
