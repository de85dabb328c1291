// Conversion of small checkpoints made in the test: tensor mapping, the llama Q/K permute, expert
// stacking, type choices per outtype, metadata, and one-line errors for broken inputs.
#include "convert/converter.h"

#include <gtest/gtest.h>

#include "convert/error.h"
#include "gguf/file.h"
#include "hf_checkpoint.h"

using namespace hf_test;

namespace {

gguf::File convert_dir(const fs::path& dir, convert::OutType outtype = convert::OutType::F32,
                       convert::ConvertSummary* summary = nullptr) {
    convert::ConvertOptions opt;
    opt.input_dir = dir.string();
    opt.output_path = (dir / "out.gguf").string();
    opt.outtype = outtype;
    convert::ConvertSummary s = convert::convert_checkpoint(opt);
    if (summary) *summary = s;
    return gguf::File::open(opt.output_path);
}

std::string convert_error(const fs::path& dir, const std::string& out = "out.gguf") {
    try {
        convert::ConvertOptions opt;
        opt.input_dir = dir.string();
        opt.output_path = (dir / out).string();
        convert::convert_checkpoint(opt);
    } catch (const convert::Error& e) {
        return e.what();
    }
    return "";
}

std::vector<float> f32_data(const gguf::File& f, const std::string& name) {
    const gguf::TensorInfo& t = f.tensor(name);
    EXPECT_EQ(t.type, gguf::GgmlType::F32) << name;
    std::vector<float> v(t.n_elements());
    std::memcpy(v.data(), f.tensor_data(t).data(), v.size() * 4);
    return v;
}

std::vector<std::string> tensor_names(const gguf::File& f) {
    std::vector<std::string> n;
    for (const auto& t : f.tensors()) n.push_back(t.name);
    return n;
}

}  // namespace

TEST(Convert, LlamaMapsNamesKeepsOrderAndWritesHparams) {
    TempDir dir("llama");
    ModelShape s;
    s.layers = 1;
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "F32"));
    gguf::File f = convert_dir(dir.path);
    // llama.cpp's order: each file's tensors by HF name (lm_head first, model.norm last)
    EXPECT_EQ(tensor_names(f), (std::vector<std::string>{
                                   "output.weight", "token_embd.weight", "blk.0.attn_norm.weight",
                                   "blk.0.ffn_down.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
                                   "blk.0.ffn_norm.weight", "blk.0.attn_k.weight", "blk.0.attn_output.weight",
                                   "blk.0.attn_q.weight", "blk.0.attn_v.weight", "output_norm.weight"}));
    EXPECT_EQ(f.tensor("blk.0.ffn_gate.weight").dims, (std::vector<int64_t>{64, 96}));  // ggml order
    const gguf::Metadata& m = f.metadata();
    EXPECT_EQ(m.get_string("general.architecture"), "llama");
    EXPECT_EQ(m.get_u32("llama.block_count"), 1u);
    EXPECT_EQ(m.get_u32("llama.embedding_length"), 64u);
    EXPECT_EQ(m.get_u32("llama.feed_forward_length"), 96u);
    EXPECT_EQ(m.get_u32("llama.attention.head_count"), 4u);
    EXPECT_EQ(m.get_u32("llama.attention.head_count_kv"), 2u);
    EXPECT_EQ(m.get_u32("llama.context_length"), 512u);
    EXPECT_EQ(m.get_u32("llama.rope.dimension_count"), 16u);  // hidden / heads without head_dim
    EXPECT_EQ(m.get_u32("llama.vocab_size"), 8u);
    EXPECT_FLOAT_EQ(m.get_f32("llama.rope.freq_base"), 10000.0f);
    EXPECT_FLOAT_EQ(m.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-6f);
    EXPECT_EQ(m.get_u32("general.file_type"), 0u);
    EXPECT_EQ(m.get_u32("general.quantization_version"), 2u);
    EXPECT_FALSE(m.contains("llama.attention.key_length"));
    // Unpermuted tensors keep their values exactly.
    std::vector<float> v = f32_data(f, "blk.0.attn_v.weight");
    EXPECT_EQ(v, pattern("model.layers.0.self_attn.v_proj.weight", v.size()));
}

// numpy: w.reshape(heads, 2, d/2, cols).swapaxes(1, 2).reshape(w.shape): per head, rows
// 0, d/2, 1, d/2+1, ... of the HF layout.
TEST(Convert, LlamaPermutesQueryAndKeyRowsPerHead) {
    TempDir dir("permute");
    ModelShape s;
    s.layers = 1;
    s.hidden = 8;
    s.heads = 2;
    s.kv_heads = 1;
    s.ff = 32;
    std::vector<TensorSpec> t = decoder_tensors(s, "F32");
    for (TensorSpec& x : t) {
        if (x.name.find("q_proj") == std::string::npos && x.name.find("k_proj") == std::string::npos) continue;
        x.values.resize(n_elements(x.shape));
        for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = static_cast<float>(i / 8);  // value = row
    }
    write_checkpoint(dir.path, "MistralForCausalLM", s, t);
    gguf::File f = convert_dir(dir.path);
    const auto rows_of = [&](const std::string& name) {
        std::vector<float> v = f32_data(f, name), rows;
        for (size_t r = 0; r < v.size() / 8; ++r) rows.push_back(v[r * 8]);
        return rows;
    };
    EXPECT_EQ(rows_of("blk.0.attn_q.weight"), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));  // 2 heads of 4
    EXPECT_EQ(rows_of("blk.0.attn_k.weight"), (std::vector<float>{0, 2, 1, 3}));              // 1 kv head
}

TEST(Convert, Qwen2KeepsQkUnpermutedAndBiasesF32) {
    TempDir dir("qwen2");
    ModelShape s;
    s.layers = 1;
    std::vector<TensorSpec> t = decoder_tensors(s, "BF16");
    t.push_back({"model.layers.0.self_attn.q_proj.bias", "BF16", {64}, {}});
    write_checkpoint(dir.path, "Qwen2ForCausalLM", s, t);
    gguf::File f = convert_dir(dir.path, convert::OutType::F16);
    EXPECT_EQ(f.metadata().get_string("general.architecture"), "qwen2");
    EXPECT_FALSE(f.metadata().contains("qwen2.rope.dimension_count"));
    EXPECT_EQ(f.tensor("blk.0.attn_q.bias").type, gguf::GgmlType::F32);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, gguf::GgmlType::F16);
    std::vector<float> bias = f32_data(f, "blk.0.attn_q.bias");
    EXPECT_EQ(bias, pattern("model.layers.0.self_attn.q_proj.bias", 64));
    // bf16 -> f16 goes through f32 and rounds; these values are exact in both.
    const auto& q = f.tensor("blk.0.attn_q.weight");
    const std::vector<float> want = pattern("model.layers.0.self_attn.q_proj.weight", q.n_elements());
    for (size_t i = 0; i < want.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, f.tensor_data(q).data() + 2 * i, 2);
        ASSERT_EQ(quant::f16_to_f32(h), want[i]) << i;
    }
}

TEST(Convert, Qwen3MapsQkNormsAndHeadDim) {
    TempDir dir("qwen3");
    ModelShape s;
    s.layers = 1;
    write_checkpoint(dir.path, "Qwen3ForCausalLM", s, decoder_tensors(s, "BF16", true), ",\"head_dim\":16");
    gguf::File f = convert_dir(dir.path, convert::OutType::BF16);
    EXPECT_EQ(f.tensor("blk.0.attn_q_norm.weight").type, gguf::GgmlType::F32);
    EXPECT_EQ(f.tensor("blk.0.attn_k_norm.weight").dims, (std::vector<int64_t>{16}));
    EXPECT_EQ(f.metadata().get_u32("qwen3.attention.key_length"), 16u);
    EXPECT_EQ(f.metadata().get_u32("qwen3.attention.value_length"), 16u);
}

TEST(Convert, MixtralStacksExpertsGateDownUpAsLlama) {
    TempDir dir("mixtral");
    ModelShape s;
    s.layers = 2;
    s.experts = 3;
    s.ff = s.expert_ff;  // Mixtral's intermediate_size is each expert's width
    write_checkpoint(dir.path, "MixtralForCausalLM", s, decoder_tensors(s, "BF16", false, "mixtral"));
    convert::ConvertSummary summary;
    gguf::File f = convert_dir(dir.path, convert::OutType::BF16, &summary);
    EXPECT_EQ(f.metadata().get_string("general.architecture"), "llama");
    EXPECT_EQ(f.metadata().get_u32("llama.expert_count"), 3u);
    EXPECT_EQ(f.metadata().get_u32("llama.expert_used_count"), 2u);
    const std::vector<std::string> names = tensor_names(f);
    // The stacks stand where the layer's last expert weight was (names sorted: before the router), in
    // w1/w2/w3 order.
    const std::vector<std::string> layer0(names.begin() + 2, names.begin() + 6);
    EXPECT_EQ(layer0, (std::vector<std::string>{"blk.0.ffn_gate_exps.weight", "blk.0.ffn_down_exps.weight",
                                                "blk.0.ffn_up_exps.weight", "blk.0.ffn_gate_inp.weight"}));
    EXPECT_EQ(f.tensor("blk.0.ffn_gate_inp.weight").type, gguf::GgmlType::F32);
    const gguf::TensorInfo& down = f.tensor("blk.1.ffn_down_exps.weight");
    EXPECT_EQ(down.dims, (std::vector<int64_t>{32, 64, 3}));
    EXPECT_EQ(down.type, gguf::GgmlType::BF16);
    // Expert e's bytes follow expert e-1's, unchanged.
    for (int e = 0; e < 3; ++e) {
        const std::string src = "model.layers.1.block_sparse_moe.experts." + std::to_string(e) + ".w2.weight";
        const std::string want = encode("BF16", pattern(src, 64 * 32));
        EXPECT_EQ(std::memcmp(f.tensor_data(down).data() + e * want.size(), want.data(), want.size()), 0) << e;
    }
        // 26304 shared + 12288 per expert path (2 layers x gate/down/up of 32 x 64) = 38.6K.
    EXPECT_EQ(summary.size_label, "3x39K");
}

TEST(Convert, Qwen3MoeStacksDownGateUp) {
    TempDir dir("qwen3moe");
    ModelShape s;
    s.layers = 1;
    s.experts = 4;
    write_checkpoint(dir.path, "Qwen3MoeForCausalLM", s, decoder_tensors(s, "BF16", true, "qwen"));
    gguf::File f = convert_dir(dir.path, convert::OutType::BF16);
    EXPECT_EQ(f.metadata().get_u32("qwen3moe.expert_feed_forward_length"), 32u);
    EXPECT_EQ(f.tensor("blk.0.ffn_gate_exps.weight").dims, (std::vector<int64_t>{64, 32, 4}));
    const std::vector<std::string> names = tensor_names(f);
    const auto at = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) - names.begin(); };
    EXPECT_EQ(at("blk.0.ffn_gate_exps.weight"), at("blk.0.ffn_down_exps.weight") + 1);
    EXPECT_EQ(at("blk.0.ffn_up_exps.weight"), at("blk.0.ffn_gate_exps.weight") + 1);
}

TEST(Convert, OuttypesChooseTensorTypesLikeLlamaCpp) {
    TempDir dir("types");
    ModelShape s;
    s.layers = 1;
    s.ff = 48;  // down_proj rows of 48 are not a multiple of 32
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "F32"));
    gguf::File f = convert_dir(dir.path, convert::OutType::Q8_0);
    EXPECT_EQ(f.metadata().get_u32("general.file_type"), 7u);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, gguf::GgmlType::Q8_0);
    EXPECT_EQ(f.tensor("token_embd.weight").type, gguf::GgmlType::Q8_0);
    EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type, gguf::GgmlType::F16);  // fallback, as llama.cpp
    EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").type, gguf::GgmlType::F32);
    // auto: an all-F32 checkpoint gets f16 (llama.cpp's default when no 16-bit weight is seen).
    convert::ConvertSummary summary;
    gguf::File a = convert_dir(dir.path, convert::OutType::Auto, &summary);
    EXPECT_EQ(summary.outtype, "f16");
    EXPECT_EQ(a.tensor("blk.0.attn_q.weight").type, gguf::GgmlType::F16);
    EXPECT_EQ(a.metadata().get_u32("general.file_type"), 1u);
}

TEST(Convert, Llama3RopeScalingAddsRopeFreqs) {
    TempDir dir("llama3");
    ModelShape s;
    s.layers = 1;
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "F32"),
                     ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                     "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":64}");
    gguf::File f = convert_dir(dir.path);
    ASSERT_EQ(f.tensors().front().name, "rope_freqs.weight");
    std::vector<float> r = f32_data(f, "rope_freqs.weight");
    ASSERT_EQ(r.size(), 8u);
    // Pair i rotates with wavelength 2*pi*10000^(2i/16): short ones keep factor 1, long ones 8,
    // those between the 16..64 band are smoothed.
    for (size_t i = 0; i < r.size(); ++i) {
        const double wavelen = 2 * M_PI * std::pow(10000.0, 2.0 * static_cast<double>(i) / 16);
        double want = 1;
        if (wavelen > 64) want = 8;
        else if (wavelen >= 16) {
            const double smooth = (64 / wavelen - 1) / 3;
            want = 1 / ((1 - smooth) / 8 + smooth);
        }
        EXPECT_NEAR(r[i], want, 1e-5 * want) << i;
    }
}

TEST(Convert, ShardedCheckpointFollowsIndex) {
    TempDir dir("sharded");
    ModelShape s;
    s.layers = 1;
    std::vector<TensorSpec> t = decoder_tensors(s, "BF16");
    std::vector<TensorSpec> a(t.begin(), t.begin() + 5), b(t.begin() + 5, t.end());
    write_file(dir / "config.json", config_json("LlamaForCausalLM", s));
    write_file(dir / "tokenizer.json", tokenizer_json());
    write_safetensors(dir / "model-00001-of-00002.safetensors", a);
    write_safetensors(dir / "model-00002-of-00002.safetensors", b);
    std::string index = "{\"metadata\":{},\"weight_map\":{";
    for (size_t i = 0; i < t.size(); ++i)
        index += (i ? "," : "") + std::string("\"") + t[i].name + "\":\"model-0000" + (i < 5 ? "1" : "2") + "-of-00002.safetensors\"";
    write_file(dir / "model.safetensors.index.json", index + "}}");
    gguf::File f = convert_dir(dir.path, convert::OutType::BF16);
    EXPECT_EQ(f.tensors().size(), t.size());
    EXPECT_EQ(f.tensors().back().name, "output_norm.weight");  // model.norm sorts last in its shard

    // Hostile variants of the same checkpoint.
    fs::rename(dir / "model-00002-of-00002.safetensors", dir / "moved");
    EXPECT_EQ(convert_error(dir.path),
              (dir / "model-00002-of-00002.safetensors").string() + ": missing shard named in model.safetensors.index.json");
    write_safetensors(dir / "model-00002-of-00002.safetensors", std::vector<TensorSpec>(b.begin(), b.end() - 1));
    EXPECT_NE(convert_error(dir.path).find("1 tensor(s) listed in model.safetensors.index.json are missing from the "
                                           "shards, first: lm_head.weight (in model-00002-of-00002.safetensors)"),
              std::string::npos);
    write_file(dir / "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}");
    EXPECT_NE(convert_error(dir.path).find("names an invalid file"), std::string::npos);
}

TEST(Convert, BrokenInputsAreOneLineErrors) {
    TempDir dir("broken");
    ModelShape s;
    s.layers = 1;
    const std::vector<TensorSpec> t = decoder_tensors(s, "F32");
    write_checkpoint(dir.path, "LlamaForCausalLM", s, t);

    EXPECT_EQ(convert_error(dir / "nope"), (dir / "nope").string() + ": not a directory (expected a Hugging Face model directory)");

    write_file(dir / "config.json", config_json("GPTNeoXForCausalLM", s));
    EXPECT_EQ(convert_error(dir.path),
              (dir / "config.json").string() +
                  ": architecture GPTNeoXForCausalLM is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                  "MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, GptOssForCausalLM, "
                  "Qwen3_5MoeForCausalLM, Qwen3_5MoeForConditionalGeneration)");

    std::string no_layers = config_json("LlamaForCausalLM", s);
    no_layers.replace(no_layers.find("\"num_hidden_layers\":1,"), 22, "");
    write_file(dir / "config.json", no_layers);
    EXPECT_EQ(convert_error(dir.path), (dir / "config.json").string() +
                                           ": missing key \"num_hidden_layers\" or \"n_layers\" or \"n_layer\" or \"num_layers\"");

    std::string bad_type = config_json("LlamaForCausalLM", s);
    bad_type.replace(bad_type.find("\"hidden_size\":64"), 16, "\"hidden_size\":\"64\"");
    write_file(dir / "config.json", bad_type);
    EXPECT_EQ(convert_error(dir.path), (dir / "config.json").string() + ": key \"hidden_size\" is string, expected an integer");

    write_file(dir / "config.json", "{\"architectures\": [\"LlamaForCausalLM\"],");
    EXPECT_NE(convert_error(dir.path).find("config.json:1:40: syntax error while parsing object key - unexpected end of input"), std::string::npos);

    write_file(dir / "config.json", config_json("LlamaForCausalLM", s));
    std::vector<TensorSpec> extra = t;
    extra.push_back({"model.layers.0.mystery.weight", "F32", {4}, {}});
    write_safetensors(dir / "model.safetensors", extra);
    EXPECT_EQ(convert_error(dir.path), (dir / "model.safetensors").string() +
                                           ": cannot map tensor 'model.layers.0.mystery.weight' for LlamaForCausalLM");

    write_safetensors(dir / "model.safetensors", t);
    fs::remove(dir / "tokenizer.json");
    EXPECT_EQ(convert_error(dir.path),
              dir.path.string() + ": no tokenizer.json or tokenizer.model (a tokenizer is needed to write a usable GGUF)");

    write_file(dir / "tokenizer.json", tokenizer_json());
    fs::remove(dir / "model.safetensors");
    EXPECT_EQ(convert_error(dir.path), dir.path.string() + ": no model.safetensors or model.safetensors.index.json found");
    EXPECT_FALSE(fs::exists(dir / "out.gguf"));  // nothing half-written
}

TEST(Convert, IncompleteExpertsAreReported) {
    TempDir dir("experts");
    ModelShape s;
    s.layers = 1;
    s.experts = 2;
    std::vector<TensorSpec> t = decoder_tensors(s, "F32", true, "qwen");
    t.erase(std::remove_if(t.begin(), t.end(), [](const TensorSpec& x) { return x.name.find("experts.1.up_proj") != std::string::npos; }),
            t.end());
    write_checkpoint(dir.path, "Qwen3MoeForCausalLM", s, t);
    EXPECT_EQ(convert_error(dir.path), dir.path.string() + ": layer 0 has 5 of 6 expert tensors (missing or misnamed experts)");
    t.push_back({"model.layers.0.mlp.experts.7.up_proj.weight", "F32", {32, 64}, {}});
    write_safetensors(dir / "model.safetensors", t);
    EXPECT_NE(convert_error(dir.path).find("expert tensor 'model.layers.0.mlp.experts.7.up_proj.weight' is outside"),
              std::string::npos);
}

TEST(Convert, RefusesToOverwriteAnInput) {
    TempDir dir("overwrite");
    ModelShape s;
    s.layers = 1;
    write_checkpoint(dir.path, "LlamaForCausalLM", s, decoder_tensors(s, "F32"));
    const auto before = fs::file_size(dir / "model.safetensors");
    EXPECT_EQ(convert_error(dir.path, "model.safetensors"),
              (dir / "model.safetensors").string() + ": is an input of this job (" +
                  (dir / "model.safetensors").string() + "); refusing to overwrite an input");
    EXPECT_NE(convert_error(dir.path, "tokenizer.json").find("refusing to overwrite"), std::string::npos);
    EXPECT_EQ(fs::file_size(dir / "model.safetensors"), before);
}
