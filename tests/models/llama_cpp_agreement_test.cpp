// gguf-run against llama.cpp on the same files of the tiny qwen35moe and gemma4 references (issue 17):
// llama-perplexity (from $LLAMA_CPP_BIN, built CPU-only) saves its distributions over 8 chunks of 128
// tokens of dev_eval.txt, and the runtime compares its own with them position by position. The mean
// KL divergence between the two engines is the measure: on these untrained models a last-bit
// difference that sends a token to another expert moves the perplexity of 504 tokens by tenths of a
// percent (gguf-run's own AVX2 and AVX-512 paths part by 0.0002-0.003 of KLD and up to 0.4% of PPL), so
// a perplexity within 0.1% is asked only of the float files. docs/quantize.md has the table and what
// parts the engines where they still do (llama.cpp's fp16 GELU table for gemma4, its BF16 activations,
// its Q8_1 activations for Q5_1). Skipped without LLAMA_CPP_BIN or ../shared.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "convert/converter.h"
#include "fixtures.h"
#include "gguf/file.h"
#include "quant/recipe.h"
#include "reference_outputs.h"
#include "run_command.h"
#include "runtime/context.h"
#include "runtime/model.h"
#include "runtime/perplexity.h"
#include "runtime/tokenizer.h"

namespace {

namespace fs = std::filesystem;

struct Engines {
    double ppl_ours = 0, ppl_llama = 0, mean_kld = 0;
};

// llama-perplexity and the runtime on `model` (-c 128 -b 128 --chunks 8 -t 2, f16 KV cache in both).
Engines compare_with_llama(const std::string& model, const fs::path& scratch) {
    const fs::path base = scratch / (fs::path(model).stem().string() + "-llama.kld");
    const std::string text = testing_support::fixture("text/dev_eval.txt").string();
    const auto theirs = testing_support::run_binary(fs::path(std::getenv("LLAMA_CPP_BIN")) / "llama-perplexity",
                                                    "-m '" + model + "' -f '" + text +
                                                        "' -c 128 -b 128 --chunks 8 -t 2 --kl-divergence-base '" +
                                                        base.string() + "'");
    EXPECT_EQ(theirs.status, 0) << theirs.err;
    const auto m = runtime::Model::load(model);
    const auto tokenizer = runtime::Tokenizer::from_metadata(m->metadata());
    runtime::ContextParams p;
    p.n_ctx = 128;
    p.n_batch = 128;
    p.n_threads = 2;
    runtime::Context ctx(*m, p);
    const runtime::KldResult r =
        runtime::compare_kld_base(ctx, base.string(), {}, runtime::perplexity_params(*tokenizer, 128, -1));
    EXPECT_EQ(r.n_positions, 8 * 63);
    // llama.cpp's perplexity from its own saved log-probabilities (to about 1e-5): the figure it prints
    // was missing from its output now and then on the loaded 2-core machine (the last chunks' lines
    // with it), while the exit status and the saved file were whole
    Engines e;
    e.ppl_llama = r.base_ppl;
    e.ppl_ours = r.ppl.ppl;
    e.mean_kld = r.mean_kld;
    std::printf("%s: gguf-run %.4f, llama-perplexity %.4f (%+.3f%%), mean KLD between them %.6f, same top %.1f%%\n",
                fs::path(model).filename().c_str(), e.ppl_ours, e.ppl_llama, 100 * (e.ppl_ours / e.ppl_llama - 1),
                e.mean_kld, 100 * r.same_top);
    return e;
}

// gguf-convert's f32 and bf16 files of the reference, and gguf-quantize's (recipe, no imatrix) of the bf16.
std::string made(const testing_support::ReferenceFiles& ref, const std::string& type) {
    if (type == "F32") return ref.converted(convert::OutType::F32, "f32.gguf");
    const std::string bf16 = ref.converted(convert::OutType::BF16, "bf16.gguf");
    if (type == "BF16") return bf16;
    const fs::path out = ref.scratch(type + ".gguf");
    if (!fs::exists(out)) {
        const gguf::File in = gguf::File::open(bf16);
        quant::PlanInputs inputs;
        inputs.recipe = quant::find_recipe(type);
        quant::write_quantized(in, quant::make_plan(in, inputs), nullptr, out.string());
    }
    return out.string();
}

class LlamaCppAgreement : public ::testing::Test {
protected:
    void SetUp() override {
        const char* bin = std::getenv("LLAMA_CPP_BIN");
        if (!bin || !*bin) GTEST_SKIP() << "set LLAMA_CPP_BIN to the folder holding llama-perplexity";
        REQUIRE_FIXTURE("text/dev_eval.txt");
    }
};

// The Q8_0 file parted the engines by 0.046 of KLD (-0.93% of PPL) while gguf-run rounded its Q8_0
// activations as ggml's reference quantizer does rather than as ggml's x86 code does; now by 0.001,
// as much as gguf-run's own two SIMD paths part. Q4_K_M and Q2_K (Q5_0, Q4_0 and Q8_0 on these
// 64-wide rows) measured 0.0011 and 0.0025. BF16 (llama.cpp rounds the activations to bf16) and IQ4_XS
// (its Q5_1 fallbacks take llama.cpp's Q8_1 activations) part by 0.03 and are left out.
TEST_F(LlamaCppAgreement, Qwen35) {
    const testing_support::ReferenceFiles ref("qwen35");
    const Engines f32 = compare_with_llama(made(ref, "F32"), ref.scratch(""));
    EXPECT_LT(f32.mean_kld, 1e-5);
    EXPECT_NEAR(f32.ppl_ours, f32.ppl_llama, 1e-4 * f32.ppl_llama);
    for (const char* type : {"Q8_0", "Q4_K_M", "Q2_K"}) {
        const Engines q = compare_with_llama(made(ref, type), ref.scratch(""));
        EXPECT_LT(q.mean_kld, 0.006) << type;
    }
}

// llama.cpp's CPU GELU reads a table of fp16 inputs and outputs; gguf-run computes it in f32, as
// transformers does (the table alone moves gemma4's logits by up to 0.16 from transformers'). That
// leaves 0.0011 of KLD on the f32 file (-0.05% of PPL) and 0.016-0.018 on the quantized ones, which
// with the table emulated in an experiment were 5e-6 and 0.001.
TEST_F(LlamaCppAgreement, Gemma4) {
    const testing_support::ReferenceFiles ref("gemma4");
    const Engines f32 = compare_with_llama(made(ref, "F32"), ref.scratch(""));
    EXPECT_LT(f32.mean_kld, 0.003);
    EXPECT_NEAR(f32.ppl_ours, f32.ppl_llama, 1e-3 * f32.ppl_llama);
    for (const char* type : {"Q8_0", "Q4_K_M", "Q2_K", "IQ4_XS"}) {
        const Engines q = compare_with_llama(made(ref, type), ref.scratch(""));
        EXPECT_LT(q.mean_kld, 0.03) << type;
    }
}

}  // namespace
