// The tiny gpt-oss reference in tests/models/gptoss, made on the GPU machine by make_gptoss_reference.py:
// hf/ is the checkpoint (random weights, MXFP4 experts as released, a small BPE with o200k's
// pre-tokenizer, gpt-oss's chat template); refs.safetensors holds transformers' own logits (f32, eager
// attention, three 128-token rows from position 0) and refs.json transformers' tokenizer ids and chat
// renderings; tiny-gptoss-{bf16,f32}.gguf are llama.cpp's converter's output (convert_reference_gptoss.py).
// gguf-convert's file must equal those byte for byte, run with transformers' logits (whole rows, then a
// prompt and one token at a time, across the 16-position sliding window), tokenize and render Harmony as
// transformers does, and quantize to MXFP4_MOE as llama-quantize does.
//
// transformers computes the experts in f32 from the dequantized MXFP4 values; the runtime, like ggml,
// rounds activations to q8_0 before its MXFP4 dot products, which on this deliberately sensitive random
// model moves logits by units. So the file with its experts stored as F32 (their exact values) is
// checked against transformers' logits to the bound (1e-3, argmax >= 99.5%), and the file as
// converted (MXFP4) against refs-ggml.safetensors: the same rows through make_gptoss_reference_local.py's
// numpy port of transformers' forward (which reproduces transformers' logits to 8e-5) with that q8_0
// rounding applied. There only the top token is held to the bound, and the logits to
// kRoundingBound: values at a rounding boundary round either way under float32 noise, and the port's
// own logits move by up to 1.2 when its expert inputs move by 1e-6 (relative) before rounding
// (make_gptoss_reference_local.py --sensitivity 1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "convert/converter.h"
#include "convert/json.h"
#include "gguf/file.h"
#include "dequantized_copy.h"
#include "gguf_compare.h"
#include "logits_compare.h"
#include "quant/recipe.h"
#include "reference_outputs.h"
#include "runtime/chat_template.h"
#include "runtime/context.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "hf_refs.h"

namespace {

namespace fs = std::filesystem;
using testing_support::HfRefs;

const testing_support::ReferenceFiles& ref() {
    static const testing_support::ReferenceFiles files("gptoss");
    return files;
}

using testing_support::Agreement;
using testing_support::accumulate;
using testing_support::report;

// The reference's own sensitivity to float32 noise before q8_0 rounding (above) is up to 1.2.
constexpr double kRoundingBound = 1.5;

void expect_matches_transformers(const Agreement& a, const std::string& what, double max_diff = 1e-3) {
    report(a, what);
    EXPECT_GT(a.positions, 0);
    EXPECT_LE(a.max_abs_diff, max_diff) << what;
    EXPECT_GE(a.same_argmax, static_cast<int64_t>(std::ceil(0.995 * static_cast<double>(a.positions)))) << what;
}

// gguf-convert's f32 file with the MXFP4 experts stored as F32.
std::string with_f32_experts() {
    const fs::path p = ref().scratch("gptoss-f32-experts.gguf");
    if (!fs::exists(p)) {
        testing_support::write_dequantized_copy(ref().converted(convert::OutType::F32, "gptoss-f32.gguf"), p.string(),
                                                gguf::GgmlType::MXFP4);
    }
    return p.string();
}

// Every row decoded from position 0 with an f32 KV cache; `step` > 0 decodes the first half as one
// prompt and the rest `step` tokens at a time (the decode path, and windows that span batches).
Agreement run_rows(const std::string& model_path, const HfRefs& refs, int step, int n_batch) {
    const auto model = runtime::Model::load(model_path);
    runtime::ContextParams params;
    params.n_ctx = static_cast<int>(refs.n_tok);
    params.n_batch = n_batch;
    params.type_k = params.type_v = gguf::GgmlType::F32;
    params.n_threads = 2;
    runtime::Context ctx(*model, params);
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
        const int64_t half = refs.n_tok / 2;
        auto logits = ctx.decode({tokens, static_cast<size_t>(half)}, false);
        accumulate(a, logits.data(), refs.row_logits(s, half - 1), V);
        for (int64_t t = half; t < refs.n_tok; t += step) {
            const int64_t n = std::min<int64_t>(step, refs.n_tok - t);
            logits = ctx.decode({tokens + t, static_cast<size_t>(n)}, false);
            accumulate(a, logits.data(), refs.row_logits(s, t + n - 1), V);
        }
    }
    return a;
}

class GptOssReference : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(ref().file("refs.json"))) GTEST_SKIP() << ref().dir().string() << " has no reference";
    }
};

TEST_F(GptOssReference, LogitsMatchTheReference) {
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    ASSERT_GE(refs.n_tok, 64);  // several 16-position windows
    expect_matches_transformers(run_rows(with_f32_experts(), refs, 0, 512), "experts as F32, whole rows");
    // as converted, bf16 and f32: MXFP4 experts against q8_0-rounded activations, as ggml computes them
    const HfRefs ggml = HfRefs::load(ref().file("refs-ggml.safetensors").string());
    EXPECT_EQ(ggml.tokens, refs.tokens) << "refs-ggml must hold transformers' rows";
    expect_matches_transformers(run_rows(ref().converted(convert::OutType::F32, "gptoss-f32.gguf"), ggml, 0, 512),
                                "MXFP4 experts, f32 file, whole rows", kRoundingBound);
    expect_matches_transformers(run_rows(ref().converted(convert::OutType::BF16, "gptoss-bf16.gguf"), ggml, 0, 512),
                                "MXFP4 experts, bf16 file, whole rows", kRoundingBound);
}

// What make_gptoss_reference.py recorded about its run: transformers' own MXFP4 loader (not the
// script's fallback) gave every parameter the values the script stored and dequantized, and
// transformers' KV-cache path agreed with its full forward pass.
TEST_F(GptOssReference, ReferenceWasMadeByTransformersItself) {
    const auto json = convert::json::parse_file(ref().file("refs.json").string());
    const auto& notes = json["notes"];
    EXPECT_TRUE(notes["loader"].as_string().starts_with("transformers from_pretrained")) << notes["loader"].as_string();
    EXPECT_EQ(notes.find("expert_dequant_mismatch"), nullptr);
    EXPECT_EQ(notes["parameters_checked_equal"].as_int(), 3 + 4 * 17);  // embeddings, norm, lm_head; 17 per layer
    EXPECT_LT(notes["cache_vs_full_max_abs"].as_double(), 1e-3);
    for (const char* failed : {"loader_error", "cache_check_error", "chat_error"}) EXPECT_EQ(notes.find(failed), nullptr) << failed;
}

TEST_F(GptOssReference, DecodingStepByStepMatchesTheReference) {
    const HfRefs refs = HfRefs::load(ref().file("refs.safetensors").string());
    expect_matches_transformers(run_rows(with_f32_experts(), refs, 1, 512),
                                "experts as F32, one token at a time after a 64-token prompt");
    // batches of 5 that straddle the window's edge, and a prompt split into batches of 16
    expect_matches_transformers(run_rows(with_f32_experts(), refs, 5, 16), "experts as F32, batches of 16 and of 5");
    const HfRefs ggml = HfRefs::load(ref().file("refs-ggml.safetensors").string());
    expect_matches_transformers(run_rows(ref().converted(convert::OutType::F32, "gptoss-f32.gguf"), ggml, 1, 512),
                                "MXFP4 experts, one token at a time after a 64-token prompt", kRoundingBound);
}

TEST_F(GptOssReference, TokenizerGivesTheHfTokenizersIds) {
    const auto json = convert::json::parse_file(ref().file("refs.json").string());
    const auto tok = runtime::Tokenizer::from_metadata(
        gguf::File::open(ref().converted(convert::OutType::F32, "gptoss-f32.gguf")).metadata());
    int checked = 0;
    for (const auto& c : json["tokenizer_cases"].items()) {
        const std::string text = c["text"].as_string();
        std::vector<int32_t> want;
        for (const auto& id : c["ids"].items()) want.push_back(static_cast<int32_t>(id.as_int()));
        EXPECT_EQ(tok->encode(text, false, true), want) << "'" << text << "'";
        EXPECT_EQ(tok->decode(want), text);
        ++checked;
    }
    EXPECT_GE(checked, 10);
}

TEST_F(GptOssReference, HarmonyRendersAsTheChatTemplate) {
    const auto json = convert::json::parse_file(ref().file("refs.json").string());
    if (!json.find("chat_cases")) GTEST_SKIP() << "the reference was made without a chat template";
    const gguf::File f = gguf::File::open(ref().converted(convert::OutType::F32, "gptoss-f32.gguf"));
    const auto format = runtime::detect_chat_format(f.metadata().get_string("tokenizer.chat_template"));
    ASSERT_EQ(format, runtime::ChatFormat::Harmony);
    for (const auto& c : json["chat_cases"].items()) {
        std::vector<runtime::ChatMessage> messages;
        for (const auto& m : c["messages"].items()) messages.push_back({m["role"].as_string(), m["content"].as_string()});
        runtime::ChatOptions opt;
        opt.date = json["chat_date"].as_string();
        if (const auto* effort = c["kwargs"].find("reasoning_effort")) opt.reasoning_effort = effort->as_string();
        EXPECT_EQ(runtime::format_chat(format, messages, c["add_generation_prompt"].as_bool(), opt),
                  c["rendered"].as_string());
    }
}

// llama.cpp's convert_hf_to_gguf.py (through convert_reference_gptoss.py) on the same checkpoint wrote
// tiny-gptoss-{bf16,f32}.gguf: gguf-convert must give the same metadata and the same tensor bytes.
TEST_F(GptOssReference, ConvertMatchesTheReferenceConverter) {
    for (const auto& [outtype, name] : {std::pair{convert::OutType::BF16, std::string("bf16")},
                                        std::pair{convert::OutType::F32, std::string("f32")}}) {
        SCOPED_TRACE(name);
        const gguf::File ours = gguf::File::open(ref().converted(outtype, "gptoss-" + name + ".gguf"));
        testing_support::expect_same_gguf(ours, gguf::File::open(ref().file("tiny-gptoss-" + name + ".gguf").string()));
    }
}

// llama-quantize's MXFP4_MOE on gpt-oss (llama_tensor_get_type): the output head q8_0; every other
// quantizable 2-D matrix q8_0; 3-D expert stacks MXFP4, here copied since they are MXFP4 already;
// what llama.cpp never quantizes (1-D tensors: norms, sinks; biases, not ".weight"; the router
// ffn_gate_inp) kept as it is.
TEST_F(GptOssReference, Mxfp4MoeRecipeAsLlamaQuantize) {
    const gguf::File in = gguf::File::open(ref().converted(convert::OutType::BF16, "gptoss-bf16.gguf"));
    quant::PlanInputs inputs;
    inputs.recipe = quant::find_recipe("MXFP4_MOE");
    ASSERT_NE(inputs.recipe, nullptr);
    const quant::QuantPlan plan = quant::make_plan(in, inputs);
    ASSERT_EQ(plan.tensors.size(), in.tensors().size());
    int experts = 0, q8 = 0, kept = 0;
    for (const quant::TensorPlan& t : plan.tensors) {
        const gguf::TensorInfo& src = in.tensor(t.name);
        if (t.name.find("_exps.weight") != std::string::npos) {
            EXPECT_EQ(src.type, gguf::GgmlType::MXFP4) << t.name;
            EXPECT_EQ(t.to.type, gguf::GgmlType::MXFP4) << t.name;
            EXPECT_FALSE(t.converts()) << t.name << " must be copied, not requantized";
            ++experts;
        } else if (src.dims.size() >= 2 && t.name.ends_with(".weight") && !t.name.ends_with("ffn_gate_inp.weight")) {
            EXPECT_EQ(t.to.type, gguf::GgmlType::Q8_0) << t.name;
            ++q8;
        } else {
            EXPECT_EQ(t.to.type, src.type) << t.name;
            ++kept;
        }
    }
    EXPECT_EQ(experts, 12);  // 4 layers x gate, up, down
    EXPECT_EQ(q8, 2 + 4 * 4);  // token_embd, output; q, k, v, o per layer
    EXPECT_GT(kept, 0);
    EXPECT_EQ(plan.metadata.get_u32("general.file_type"), 38u);
}

}  // namespace
