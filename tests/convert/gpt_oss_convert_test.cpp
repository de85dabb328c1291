// gpt-oss checkpoints (MXFP4 experts as released) to GGUF, as llama.cpp's converter lays them out:
// the expert matrices first and kept as MXFP4 (ggml's block layout), the interleaved gate/up rows and
// bias columns split, llama.cpp's names (attn_sinks, post_attention_norm, biased router) and keys.
#include <gtest/gtest.h>

#include <algorithm>

#include "convert/converter.h"
#include "convert/error.h"
#include "gguf/file.h"
#include "hf_checkpoint.h"
#include "quant/blocks.h"

using namespace hf_test;

namespace {

constexpr int kLayers = 2, kHidden = 64, kFf = 32, kExperts = 2, kHeads = 4, kKvHeads = 2, kHeadDim = 16, kVocab = 8;

std::vector<float> bytes_pattern(uint64_t n, uint32_t seed) {
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 37 + seed * 101 + (i >> 3)) % 256);
    return v;
}

// The released layout: per layer gate_up blocks [E, 2F, H/32, 16] + scales [E, 2F, H/32] + bias [E, 2F],
// down blocks [E, H, F/32, 16] + scales [E, H, F/32] + bias [E, H]; sinks without ".weight".
std::vector<TensorSpec> gpt_oss_tensors() {
    std::vector<TensorSpec> t = {{"model.embed_tokens.weight", "BF16", {kVocab, kHidden}, {}},
                                 {"lm_head.weight", "BF16", {kVocab, kHidden}, {}},
                                 {"model.norm.weight", "BF16", {kHidden}, {}}};
    for (int l = 0; l < kLayers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        t.push_back({p + "input_layernorm.weight", "BF16", {kHidden}, {}});
        t.push_back({p + "post_attention_layernorm.weight", "BF16", {kHidden}, {}});
        for (const auto& [n, rows, cols] : {std::tuple{"q_proj", kHeads * kHeadDim, kHidden},
                                            std::tuple{"k_proj", kKvHeads * kHeadDim, kHidden},
                                            std::tuple{"v_proj", kKvHeads * kHeadDim, kHidden},
                                            std::tuple{"o_proj", kHidden, kHeads * kHeadDim}}) {
            t.push_back({p + "self_attn." + n + ".weight", "BF16", {rows, cols}, {}});
            t.push_back({p + "self_attn." + n + ".bias", "BF16", {rows}, {}});
        }
        t.push_back({p + "self_attn.sinks", "BF16", {kHeads}, {}});
        t.push_back({p + "mlp.router.weight", "BF16", {kExperts, kHidden}, {}});
        t.push_back({p + "mlp.router.bias", "BF16", {kExperts}, {}});
        const std::string e = p + "mlp.experts.";
        t.push_back({e + "gate_up_proj_blocks", "U8", {kExperts, 2 * kFf, kHidden / 32, 16},
                     bytes_pattern(uint64_t{kExperts} * 2 * kFf * kHidden / 2, l)});
        t.push_back({e + "gate_up_proj_scales", "U8", {kExperts, 2 * kFf, kHidden / 32},
                     bytes_pattern(uint64_t{kExperts} * 2 * kFf * kHidden / 32, 10 + l)});
        t.push_back({e + "gate_up_proj_bias", "BF16", {kExperts, 2 * kFf}, {}});
        t.push_back({e + "down_proj_blocks", "U8", {kExperts, kHidden, kFf / 32, 16},
                     bytes_pattern(uint64_t{kExperts} * kHidden * kFf / 2, 20 + l)});
        t.push_back({e + "down_proj_scales", "U8", {kExperts, kHidden, kFf / 32},
                     bytes_pattern(uint64_t{kExperts} * kHidden * kFf / 32, 30 + l)});
        t.push_back({e + "down_proj_bias", "BF16", {kExperts, kHidden}, {}});
    }
    return t;
}

std::string gpt_oss_config() {
    ModelShape s;
    s.layers = kLayers;
    s.hidden = kHidden;
    s.heads = kHeads;
    s.kv_heads = kKvHeads;
    s.ff = kFf;
    s.vocab = kVocab;
    std::string c = config_json("GptOssForCausalLM", s,
                                ",\"head_dim\":16,\"num_local_experts\":2,\"num_experts_per_tok\":1,\"sliding_window\":4,"
                                "\"layer_types\":[\"sliding_attention\",\"full_attention\"],\"attention_bias\":true,"
                                "\"rope_scaling\":{\"beta_fast\":32.0,\"beta_slow\":1.0,\"factor\":32.0,"
                                "\"original_max_position_embeddings\":4096,\"rope_type\":\"yarn\",\"truncate\":false},"
                                "\"quantization_config\":{\"quant_method\":\"mxfp4\"}");
    return c;
}

void write_gpt_oss(const fs::path& dir, const std::vector<TensorSpec>& tensors) {
    write_file(dir / "config.json", gpt_oss_config());
    write_safetensors(dir / "model.safetensors", tensors);
    write_file(dir / "tokenizer.json", tokenizer_json());
}

gguf::File convert_to(const fs::path& dir, convert::OutType outtype) {
    convert::ConvertOptions opt;
    opt.input_dir = dir.string();
    opt.output_path = (dir / "out.gguf").string();
    opt.outtype = outtype;
    opt.replace_existing = true;
    convert::convert_checkpoint(opt);
    return gguf::File::open(opt.output_path);
}

const TensorSpec& spec(const std::vector<TensorSpec>& t, const std::string& name) {
    return *std::find_if(t.begin(), t.end(), [&](const TensorSpec& s) { return s.name == name; });
}

}  // namespace

TEST(ConvertGptOss, ExpertsFirstAsMxfp4ThenTheRestByName) {
    TempDir dir("gptoss");
    const auto tensors = gpt_oss_tensors();
    write_gpt_oss(dir.path, tensors);
    const gguf::File f = convert_to(dir.path, convert::OutType::BF16);
    std::vector<std::string> names;
    for (const auto& t : f.tensors()) names.push_back(t.name);
    const std::vector<std::string> first = {"blk.0.ffn_down_exps.weight", "blk.0.ffn_gate_exps.weight",
                                            "blk.0.ffn_up_exps.weight",   "blk.1.ffn_down_exps.weight",
                                            "blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight",
                                            "output.weight",              "token_embd.weight",
                                            "blk.0.attn_norm.weight",     "blk.0.ffn_down_exps.bias",
                                            "blk.0.ffn_gate_exps.bias",   "blk.0.ffn_up_exps.bias",
                                            "blk.0.ffn_gate_inp.bias",    "blk.0.ffn_gate_inp.weight",
                                            "blk.0.post_attention_norm.weight", "blk.0.attn_k.bias"};
    ASSERT_GE(names.size(), first.size());
    EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + static_cast<long>(first.size())), first);
    EXPECT_EQ(names.back(), "output_norm.weight");
    EXPECT_NE(std::find(names.begin(), names.end(), "blk.1.attn_sinks.weight"), names.end());

    const gguf::TensorInfo& gate = f.tensor("blk.1.ffn_gate_exps.weight");
    EXPECT_EQ(gate.type, gguf::GgmlType::MXFP4);
    EXPECT_EQ(gate.dims, (std::vector<int64_t>{kHidden, kFf, kExperts}));
    EXPECT_EQ(f.tensor("blk.1.ffn_down_exps.weight").dims, (std::vector<int64_t>{kFf, kHidden, kExperts}));
    EXPECT_EQ(f.tensor("blk.0.attn_sinks.weight").type, gguf::GgmlType::F32);
    EXPECT_EQ(f.tensor("blk.0.ffn_gate_inp.weight").type, gguf::GgmlType::F32);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, gguf::GgmlType::BF16);
    EXPECT_EQ(f.tensor("blk.0.ffn_up_exps.bias").dims, (std::vector<int64_t>{kFf, kExperts}));

    // up = the odd gate_up rows: expert 1, row 3 of up is checkpoint row 7; each group becomes the scale
    // byte then 16 bytes holding values j (low nibble) and j + 16 (high nibble)
    const auto& blocks = spec(tensors, "model.layers.1.mlp.experts.gate_up_proj_blocks").values;
    const auto& scales = spec(tensors, "model.layers.1.mlp.experts.gate_up_proj_scales").values;
    const auto up = f.tensor_data(f.tensor("blk.1.ffn_up_exps.weight"));
    const int groups = kHidden / 32;
    for (int g = 0; g < groups; ++g) {
        const int64_t src = (1 * 2 * kFf + 7) * groups + g;                     // checkpoint (expert 1, row 7, group g)
        const uint8_t* blk = up.data() + ((1 * kFf + 3) * groups + g) * 17;     // GGUF (expert 1, row 3, group g)
        EXPECT_EQ(blk[0], static_cast<uint8_t>(scales[static_cast<size_t>(src)]));
        uint8_t v[32];
        for (int j = 0; j < 16; ++j) {
            const auto byte = static_cast<uint8_t>(blocks[static_cast<size_t>(src * 16 + j)]);
            v[2 * j] = byte & 0x0F;
            v[2 * j + 1] = byte >> 4;
        }
        for (int j = 0; j < 16; ++j) EXPECT_EQ(blk[1 + j], v[j] | (v[j + 16] << 4)) << "group " << g << " byte " << j;
    }
    // gate bias = the even columns, up bias = the odd ones
    const auto bias = pattern("model.layers.0.mlp.experts.gate_up_proj_bias", uint64_t{kExperts} * 2 * kFf);
    std::vector<float> up_bias(static_cast<size_t>(kExperts * kFf));
    std::memcpy(up_bias.data(), f.tensor_data(f.tensor("blk.0.ffn_up_exps.bias")).data(), up_bias.size() * 4);
    for (int e = 0; e < kExperts; ++e) {
        for (int i = 0; i < kFf; ++i) EXPECT_EQ(up_bias[e * kFf + i], bias[e * 2 * kFf + 2 * i + 1]);
    }
}

TEST(ConvertGptOss, MetadataAsLlamaCpp) {
    TempDir dir("gptoss-meta");
    write_gpt_oss(dir.path, gpt_oss_tensors());
    const gguf::File f = convert_to(dir.path, convert::OutType::BF16);
    const gguf::Metadata& m = f.metadata();
    EXPECT_EQ(m.get_string("general.architecture"), "gpt-oss");
    EXPECT_EQ(m.get_u32("general.file_type"), 38u);  // MOSTLY_MXFP4_MOE
    EXPECT_EQ(m.get_u32("gpt-oss.attention.sliding_window"), 4u);
    EXPECT_EQ(m.get_u32("gpt-oss.expert_feed_forward_length"), static_cast<uint32_t>(kFf));
    EXPECT_EQ(m.get_string("gpt-oss.rope.scaling.type"), "yarn");
    EXPECT_EQ(m.get_u32("gpt-oss.rope.scaling.original_context_length"), 4096u);
    // the scaling comes before the RoPE base, as llama.cpp writes it
    std::vector<std::string> keys;
    for (const auto& [k, v] : m.entries()) keys.push_back(k);
    const auto at = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) - keys.begin(); };
    EXPECT_LT(at("gpt-oss.rope.scaling.yarn_beta_slow"), at("gpt-oss.rope.freq_base"));
    EXPECT_EQ(at("gpt-oss.rope.scaling.yarn_beta_fast") + 1, at("gpt-oss.rope.scaling.yarn_beta_slow"));
    // q8_0 keeps the experts MXFP4 and records q8_0
    const gguf::File q = convert_to(dir.path, convert::OutType::Q8_0);
    EXPECT_EQ(q.metadata().get_u32("general.file_type"), 7u);
    EXPECT_EQ(q.tensor("blk.0.ffn_down_exps.weight").type, gguf::GgmlType::MXFP4);
    EXPECT_EQ(q.tensor("blk.0.attn_q.weight").type, gguf::GgmlType::Q8_0);
}

TEST(ConvertGptOss, BrokenExpertTensorsAreNamed) {
    const auto error = [](std::vector<TensorSpec> tensors) {
        TempDir dir("gptoss-bad");
        write_gpt_oss(dir.path, tensors);
        try {
            convert_to(dir.path, convert::OutType::BF16);
        } catch (const convert::Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    auto t = gpt_oss_tensors();
    t.erase(std::find_if(t.begin(), t.end(), [](const TensorSpec& s) { return s.name == "model.layers.1.mlp.experts.down_proj_blocks"; }));
    EXPECT_NE(error(t).find("down_proj_scales' comes without its down_proj_blocks"), std::string::npos) << error(t);
    t = gpt_oss_tensors();
    for (auto& s : t) {
        if (s.name == "model.layers.0.mlp.experts.down_proj_scales") s.dtype = "BF16";
    }
    EXPECT_NE(error(t).find("must be U8"), std::string::npos) << error(t);
    t = gpt_oss_tensors();
    t.push_back({"model.layers.0.mlp.experts.gate_up_proj", "BF16", {kExperts, kHidden, 2 * kFf}, {}});
    EXPECT_NE(error(t).find("dequantized experts are not supported"), std::string::npos) << error(t);
    t = gpt_oss_tensors();
    for (auto& s : t) {
        if (s.name == "model.norm.weight") s = {s.name, "U8", s.shape, std::vector<float>(kHidden, 3.0f)};
    }
    EXPECT_NE(error(t).find("has dtype U8"), std::string::npos) << error(t);
}
