// The tiny Qwen3.5-MoE reference in tests/models/qwen35: hf/ is the checkpoint qwen35_tiny.py defines
// (Qwen3.5-35B-A3B's structure shrunk: Gated DeltaNet layers 3 of every 4, gated attention with a
// partial rotary, 16 experts top-8 plus a gated shared expert, bf16 weights), refs.safetensors the
// logits of a numpy float64 port of transformers' Qwen3_5MoeForCausalLM forward pass
// (make_qwen35_reference_local.py; its delta rule chunked by 64 as transformers computes prompts);
// transformers/ holds what make_qwen35_reference.py got from transformers 5.17 itself on the GPU machine
// (whole rows, cached steps, tokenizer cases; see its README.md).
//
// gguf-convert's file (its linear-attention tensors transformed and reordered as llama.cpp's converter
// does) runs here with an f32 KV cache: whole 200-token rows (three recurrent chunks of the reference),
// a prompt continued one token at a time and in small batches (the recurrent state carried between
// calls), and the bf16 file. The context's recurrent state is per sequence: truncate(0) starts over,
// anything else but staying is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "convert/converter.h"
#include "convert/json.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "gguf_compare.h"
#include "hf_refs.h"
#include "llama_cpp_conversions.h"
#include "logits_compare.h"
#include "quant/recipe.h"
#include "reference_outputs.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using testing_support::HfRefs;

const testing_support::ReferenceFiles& ref() {
    static const testing_support::ReferenceFiles files("qwen35");
    return files;
}

using testing_support::Agreement;
using testing_support::accumulate;
using testing_support::report;

void expect_matches(const Agreement& a, const std::string& what, double max_diff = 1e-3) {
    report(a, what);
    EXPECT_GT(a.positions, 0);
    EXPECT_LE(a.max_abs_diff, max_diff) << what;
    EXPECT_EQ(a.same_argmax, a.positions) << what;
}

runtime::ContextParams params(const HfRefs& refs, int n_batch) {
    runtime::ContextParams p;
    p.n_ctx = static_cast<int>(refs.n_tok);
    p.n_batch = n_batch;
    p.type_k = p.type_v = gguf::GgmlType::F32;
    p.n_threads = 2;
    return p;
}

// Every row from position 0; `step` > 0 decodes a 100-token prompt, then `step` tokens per call.
Agreement run_rows(const std::string& model_path, const HfRefs& refs, int step, int n_batch) {
    const auto model = runtime::Model::load(model_path);
    runtime::Context ctx(*model, params(refs, n_batch));
    Agreement a;
    const int64_t V = refs.n_vocab;
    for (int64_t s = 0; s < refs.n_seq; ++s) {
        ctx.truncate(0);
        const int32_t* tokens = refs.seq_tokens(s);
        if (step == 0) {
            const auto logits = ctx.decode({tokens, static_cast<size_t>(refs.n_tok)}, true);
            for (int64_t t = 0; t < refs.n_tok; ++t) accumulate(a, logits.data() + t * V, refs.row_logits(s, t), V);
            continue;
        }
        const int64_t prompt = 100;
        auto logits = ctx.decode({tokens, static_cast<size_t>(prompt)}, false);
        accumulate(a, logits.data(), refs.row_logits(s, prompt - 1), V);
        for (int64_t t = prompt; t < refs.n_tok; t += step) {
            const int64_t n = std::min<int64_t>(step, refs.n_tok - t);
            logits = ctx.decode({tokens + t, static_cast<size_t>(n)}, true);
            for (int64_t i = 0; i < n; ++i) accumulate(a, logits.data() + i * V, refs.row_logits(s, t + i), V);
        }
    }
    return a;
}

class Qwen35Reference : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(ref().file("refs.json"))) GTEST_SKIP() << ref().dir().string() << " has no reference";
    }
};

TEST_F(Qwen35Reference, LogitsMatchTheReference) {
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    ASSERT_GE(refs.n_tok, 3 * 64);  // three chunks of the reference's chunked delta rule
    expect_matches(run_rows(ref().converted(convert::OutType::F32, "qwen35-f32.gguf"), refs, 0, 512),
                   "f32 file, whole rows");
    // the weights are bf16 values: the bf16 file holds the same numbers
    expect_matches(run_rows(ref().converted(convert::OutType::BF16, "qwen35-bf16.gguf"), refs, 0, 512),
                   "bf16 file, whole rows");
}

TEST_F(Qwen35Reference, DecodingStepByStepMatchesTheReference) {
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    const std::string f32 = ref().converted(convert::OutType::F32, "qwen35-f32.gguf");
    expect_matches(run_rows(f32, refs, 1, 512), "a 100-token prompt, then one token at a time");
    // the prompt in batches of 16 (the state carried between forward calls), then batches of 7
    expect_matches(run_rows(f32, refs, 7, 16), "batches of 16 and of 7");
}

TEST_F(Qwen35Reference, PromptAtOnceEqualsTokenByToken) {
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    const auto model = runtime::Model::load(ref().converted(convert::OutType::F32, "qwen35-f32.gguf"));
    runtime::Context ctx(*model, params(refs, 512));
    const int64_t V = refs.n_vocab, T = refs.n_tok;
    const int32_t* tokens = refs.seq_tokens(0);
    const auto whole = ctx.decode({tokens, static_cast<size_t>(T)}, true);
    const std::vector<float> at_once(whole.begin(), whole.end());
    ctx.truncate(0);
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
        const auto one = ctx.decode({tokens + t, 1}, false);
        for (int64_t i = 0; i < V; ++i) worst = std::max(worst, std::fabs(double(one[i]) - at_once[t * V + i]));
    }
    std::printf("prompt at once vs token by token: max |diff| %.3g\n", worst);
    EXPECT_LE(worst, 1e-3);  // matrix products sum in another order for one row than for a batch
}

TEST_F(Qwen35Reference, RecurrentStateIsPerSequence) {
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    const auto model = runtime::Model::load(ref().converted(convert::OutType::F32, "qwen35-f32.gguf"));
    runtime::Context ctx(*model, params(refs, 512));
    const int32_t* tokens = refs.seq_tokens(1);
    const auto first = ctx.decode({tokens, 40}, false);
    const std::vector<float> expected(first.begin(), first.end());
    // stepping back inside a sequence would need the state of that position, which is not kept
    EXPECT_FALSE(ctx.can_truncate(20));
    EXPECT_THROW(ctx.truncate(20), runtime::Error);
    EXPECT_EQ(ctx.n_past(), 40);
    EXPECT_TRUE(ctx.can_truncate(40));
    ctx.truncate(40);
    // a new sequence starts from a clean state: the same logits again
    ctx.truncate(0);
    const auto again = ctx.decode({tokens, 40}, false);
    for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(again[i], expected[i]) << i;
}

TEST_F(Qwen35Reference, MemoryPlanCountsTheRecurrentState) {
    const auto model = runtime::Model::load(ref().converted(convert::OutType::F32, "qwen35-f32.gguf"));
    const runtime::HParams& hp = model->hparams();
    ASSERT_EQ(hp.n_layer, 8u);
    int recurrent = 0;
    for (uint32_t il = 0; il < hp.n_layer; ++il) recurrent += hp.is_recurrent(il);
    EXPECT_EQ(recurrent, 6);  // layers 3 and 7 attend
    EXPECT_FALSE(hp.is_recurrent(3));
    EXPECT_FALSE(hp.is_recurrent(7));
    runtime::ContextParams p;
    p.n_ctx = 256;
    p.type_k = p.type_v = gguf::GgmlType::F32;
    p.n_threads = 1;
    runtime::Context ctx(*model, p);
    // KV rows only for the two attention layers
    EXPECT_EQ(ctx.kv_cache().bytes_per_device().at(runtime::Device::cpu()), 2 * ctx.kv_cache().layer_bytes());
    // conv state (3 taps x 128 channels) and 4 heads of 16 x 16 per recurrent layer, per sequence
    EXPECT_EQ(runtime::RecurrentState::layer_bytes(hp), (3u * 128u + 4u * 16u * 16u) * 4u);
    const auto mem = ctx.memory().at(runtime::Device::cpu());
    EXPECT_EQ(mem.kv_cache, 2 * ctx.kv_cache().layer_bytes() + 6 * runtime::RecurrentState::layer_bytes(hp));
}

// The converted file's layout as llama.cpp's converter writes it (names, shapes, the F32 tensors,
// the transforms): checked here by value against the checkpoint's own numbers.
TEST_F(Qwen35Reference, ConvertedLayoutIsLlamaCpps) {
    const gguf::File f = gguf::File::open(ref().converted(convert::OutType::BF16, "qwen35-bf16.gguf"));
    const auto& m = f.metadata();
    EXPECT_EQ(m.get_string("general.architecture"), "qwen35moe");
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.conv_kernel"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.state_size"), 16u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.group_count"), 2u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.time_step_rank"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.ssm.inner_size"), 64u);
    EXPECT_EQ(m.get_u32("qwen35moe.full_attention_interval"), 4u);
    EXPECT_EQ(m.get_u32("qwen35moe.rope.dimension_count"), 8u);
    EXPECT_EQ(m.get_u32("qwen35moe.expert_shared_feed_forward_length"), 96u);
    EXPECT_EQ(m.get_string("tokenizer.ggml.pre"), "qwen35");
    const auto type_of = [&](const std::string& n) { return f.tensor(n).type; };
    const auto dims_of = [&](const std::string& n) { return f.tensor(n).dims; };
    using gguf::GgmlType;
    EXPECT_EQ(type_of("blk.0.ssm_a"), GgmlType::F32);
    EXPECT_EQ(type_of("blk.0.ssm_dt.bias"), GgmlType::F32);
    EXPECT_EQ(type_of("blk.0.ssm_conv1d.weight"), GgmlType::F32);
    EXPECT_EQ(dims_of("blk.0.ssm_conv1d.weight"), (std::vector<int64_t>{4, 128}));
    EXPECT_EQ(type_of("blk.0.ffn_gate_inp_shexp.weight"), GgmlType::F32);
    EXPECT_EQ(dims_of("blk.0.ffn_gate_inp_shexp.weight"), (std::vector<int64_t>{64, 1}));
    EXPECT_EQ(type_of("blk.0.ffn_gate_inp.weight"), GgmlType::F32);
    EXPECT_EQ(type_of("blk.0.attn_qkv.weight"), GgmlType::BF16);
    EXPECT_EQ(type_of("blk.0.ssm_out.weight"), GgmlType::BF16);
    EXPECT_EQ(dims_of("blk.3.attn_q.weight"), (std::vector<int64_t>{64, 256}));  // q and gate per head
    EXPECT_EQ(dims_of("blk.3.ffn_gate_exps.weight"), (std::vector<int64_t>{64, 32, 16}));
    EXPECT_EQ(dims_of("blk.3.ffn_down_exps.weight"), (std::vector<int64_t>{32, 64, 16}));
    EXPECT_FALSE(f.find_tensor("blk.3.attn_qkv.weight"));
    EXPECT_FALSE(f.find_tensor("blk.0.attn_q.weight"));
}

// Q4_K_M as llama.cpp's llama_tensor_get_type reads for this layout: attn_qkv ranks with attn_v as a
// value projection (8 of them here: the first, the last and every third from the second get Q6_K),
// the convolution, ssm_a, the dt bias, norms and both router gates are never quantized, the
// other linear-attention matrices take the base type; rows of 64 take the 32-block fallbacks (Q4_K
// -> Q5_0, Q6_K -> Q8_0). The same rules, at full size, are checked in the synth preset's test.
TEST_F(Qwen35Reference, Q4KMRecipeAsLlamaQuantize) {
    const gguf::File in = gguf::File::open(ref().converted(convert::OutType::BF16, "qwen35-bf16.gguf"));
    quant::PlanInputs inputs;
    inputs.recipe = quant::find_recipe("Q4_K_M");
    ASSERT_NE(inputs.recipe, nullptr);
    const quant::QuantPlan plan = quant::make_plan(in, inputs);
    std::map<std::string, gguf::GgmlType> type;
    for (const quant::TensorPlan& t : plan.tensors) type[t.name] = t.to.type;
    using gguf::GgmlType;
    for (const char* kept : {"blk.0.ssm_conv1d.weight", "blk.0.ssm_a", "blk.0.ssm_dt.bias", "blk.0.ssm_norm.weight",
                             "blk.0.ffn_gate_inp.weight", "blk.0.ffn_gate_inp_shexp.weight", "blk.3.attn_q_norm.weight",
                             "blk.3.post_attention_norm.weight"}) {
        EXPECT_EQ(type.at(kept), GgmlType::F32) << kept;
    }
    const std::map<std::string, GgmlType> value{
        {"blk.0.attn_qkv.weight", GgmlType::Q8_0}, {"blk.1.attn_qkv.weight", GgmlType::Q5_0},
        {"blk.2.attn_qkv.weight", GgmlType::Q5_0}, {"blk.3.attn_v.weight", GgmlType::Q8_0},
        {"blk.4.attn_qkv.weight", GgmlType::Q5_0}, {"blk.5.attn_qkv.weight", GgmlType::Q5_0},
        {"blk.6.attn_qkv.weight", GgmlType::Q8_0}, {"blk.7.attn_v.weight", GgmlType::Q8_0}};
    for (const auto& [name, t] : value) EXPECT_EQ(type.at(name), t) << name;
    for (const char* base : {"blk.0.ssm_alpha.weight", "blk.0.ssm_beta.weight", "blk.0.attn_gate.weight",
                             "blk.0.ssm_out.weight", "blk.3.attn_q.weight", "blk.0.ffn_gate_shexp.weight"}) {
        EXPECT_EQ(type.at(base), GgmlType::Q5_0) << base;
    }
    // ffn_down by layer (more bits at 0, 3, 6, 7 of 8), the shared expert's like the routed ones'
    EXPECT_EQ(type.at("blk.1.ffn_down_shexp.weight"), GgmlType::Q5_0);
    EXPECT_EQ(type.at("blk.3.ffn_down_shexp.weight"), GgmlType::Q8_0);
    EXPECT_EQ(type.at("blk.3.ffn_down_exps.weight"), GgmlType::Q8_0);
    EXPECT_EQ(type.at("output.weight"), GgmlType::Q8_0);
}

// llama.cpp's converter appends Qwen3.5's MTP block as one more block (nextn_predict_layers = 1,
// counted in block_count) unless told --no-mtp: such a file loads, the extra block is not run, and
// the logits are those of the main blocks.
TEST_F(Qwen35Reference, AnMtpBlockIsLoadedAroundAndNotRun) {
    const std::string plain = ref().converted(convert::OutType::F32, "qwen35-f32.gguf");
    const fs::path with_mtp = ref().scratch("qwen35-mtp.gguf");
    {
        const gguf::File in = gguf::File::open(plain);
        gguf::Writer w(with_mtp.string());
        w.metadata() = in.metadata();
        w.metadata().set("qwen35moe.block_count", gguf::Value::u32(9));
        w.metadata().set("qwen35moe.nextn_predict_layers", gguf::Value::u32(1));
        for (const auto& t : in.tensors()) w.add_tensor(t.name, t.type, t.dims);
        w.add_tensor("blk.8.nextn.eh_proj.weight", gguf::GgmlType::F32, {128, 64});
        for (const auto& t : in.tensors()) w.write_data(in.tensor_data(t));
        const std::vector<float> zeros(128 * 64, 0.0f);
        w.write_data({reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size() * sizeof(float)});
        w.finish();
    }
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    const auto model = runtime::Model::load(with_mtp.string());
    EXPECT_EQ(model->hparams().n_layer, 8u);
    EXPECT_EQ(model->hparams().n_layer_nextn, 1u);
    expect_matches(run_rows(with_mtp.string(), refs, 0, 512), "with an MTP block, whole rows");
}

// What make_qwen35_reference.py makes with transformers and llama.cpp's converter
// (tests/models/qwen35/transformers/: refs.safetensors, refs-steps.safetensors, refs.json; llama.cpp's
// tiny-qwen35-{f32,bf16}.gguf came from another device call and are kept as hashes,
// tests/models/llama_cpp_conversions.txt).
fs::path transformers_file(const std::string& name) { return ref().dir() / "transformers" / name; }

TEST_F(Qwen35Reference, LogitsMatchTransformers) {
    if (!fs::exists(transformers_file("refs.safetensors"))) GTEST_SKIP() << "no transformers reference yet";
    const HfRefs refs = HfRefs::load(transformers_file("refs.safetensors").string());
    const std::string f32 = ref().converted(convert::OutType::F32, "qwen35-f32.gguf");
    expect_matches(run_rows(f32, refs, 0, 512), "transformers: whole rows");
    if (fs::exists(transformers_file("refs-steps.safetensors"))) {
        const HfRefs steps = HfRefs::load(transformers_file("refs-steps.safetensors").string());
        expect_matches(run_rows(f32, steps, 1, 512), "transformers' cached steps: one token at a time");
    }
}

// transformers/refs.json: what the same device run measured between its own outputs. Recomputed here
// from the committed files (so the files are the ones that run measured) and held to the bar the runtime
// is held to: the numpy port the other tests use is within 1e-3 of transformers (f32 against f64
// arithmetic; 6.8e-4 measured), and transformers' own cached steps differ from its whole-row prompt by
// 4.1e-4 (chunked against recurrent delta rule): the runtime's 6.3e-4 lies within transformers' own spread.
double recorded(const convert::json::Value& report, const char* key) {
    const convert::json::Value& v = report[key];  // absent: throws naming the key
    return v.is_object() ? v["max_abs_diff"].as_double() : v.as_double();
}

TEST_F(Qwen35Reference, PortAndCachedStepsAgreeWithTransformers) {
    if (!fs::exists(transformers_file("refs.json")) || !fs::exists(transformers_file("refs-steps.safetensors"))) {
        GTEST_SKIP() << "no transformers reference yet";
    }
    const auto report = convert::json::parse_file(transformers_file("refs.json").string());
    const HfRefs port = HfRefs::load(ref().file("refs.safetensors").string());
    const HfRefs hf = HfRefs::load(transformers_file("refs.safetensors").string());
    const HfRefs steps = HfRefs::load(transformers_file("refs-steps.safetensors").string());
    ASSERT_EQ(port.tokens, hf.tokens);
    ASSERT_EQ(port.logits.size(), hf.logits.size());
    const Agreement a = testing_support::agreement(port.logits, hf.logits, static_cast<int>(hf.n_vocab));
    expect_matches(a, "numpy port vs transformers, whole rows");
    EXPECT_NEAR(a.max_abs_diff, recorded(report, "transformers_vs_numpy_port"), 1e-6);

    // the cached steps are row 0's first 124 tokens: the same tokens, the whole row's logits again
    ASSERT_EQ(steps.n_seq, 1);
    ASSERT_EQ(steps.n_tok, 124);
    ASSERT_TRUE(std::equal(steps.tokens.begin(), steps.tokens.end(), hf.seq_tokens(0)));
    const std::vector<float> head(hf.row_logits(0, 0), hf.row_logits(0, steps.n_tok));
    const Agreement s = testing_support::agreement(steps.logits, head, static_cast<int>(hf.n_vocab));
    expect_matches(s, "transformers: cached steps vs whole row");
    EXPECT_NEAR(s.max_abs_diff, recorded(report, "prompt_vs_steps_max_abs_diff"), 1e-6);
}

// refs.json's tokenizer cases: Hugging Face tokenizers (on the GPU machine) encoding hf/tokenizer.json
// without added BOS, the chat specials recognised; our tokenizer from the converted file must give the
// same ids and decode them back to the text.
TEST_F(Qwen35Reference, TokenizerMatchesHuggingFace) {
    if (!fs::exists(transformers_file("refs.json"))) GTEST_SKIP() << "no transformers reference yet";
    const auto report = convert::json::parse_file(transformers_file("refs.json").string());
    const gguf::File f = gguf::File::open(ref().converted(convert::OutType::F32, "qwen35-f32.gguf"));
    const auto tok = runtime::Tokenizer::from_metadata(f.metadata());
    const auto& cases = report["tokenizer_cases"].items();
    ASSERT_GE(cases.size(), 9u);
    for (const auto& c : cases) {
        const std::string text = c["text"].as_string();
        std::vector<int32_t> want;
        for (const auto& id : c["ids"].items()) want.push_back(static_cast<int32_t>(id.as_int()));
        EXPECT_EQ(tok->encode(text, false, true), want) << text;
        EXPECT_EQ(tok->decode(want, true), text) << text;
    }
}

TEST_F(Qwen35Reference, ConvertedFileEqualsLlamaCpps) {
    for (const auto& [outtype, name] : {std::pair{convert::OutType::F32, std::string("f32")},
                                        std::pair{convert::OutType::BF16, std::string("bf16")}}) {
        const std::string file = "tiny-qwen35-" + name + ".gguf";
        testing_support::expect_llama_cpp_bytes(ref().converted(outtype, "qwen35-" + name + ".gguf"), file, transformers_file(file));
    }
}

// gguf-quantize writes what llama-quantize writes from the same bf16 file, for every K-quant and legacy
// recipe (IQ4_XS aside: llama_cpp_conversions.txt says why)
TEST_F(Qwen35Reference, QuantizedFilesEqualLlamaQuantizes) {
    const std::string bf16 = ref().converted(convert::OutType::BF16, "qwen35-bf16.gguf");
    for (const char* recipe : {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K"}) {
        const std::string name = std::string("tiny-qwen35-") + recipe + ".gguf";
        testing_support::expect_llama_quantize_bytes(bf16, recipe, name, fs::path(bf16).parent_path() / name);
    }
}

}  // namespace
