// The forward pass against HF transformers' logits for the fixture models (f32 arithmetic on bf16
// weights): every position of two independent 128-token sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "fixtures.h"
#include "hf_refs.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/model.h"

namespace {

using testing_support::fixture;
using testing_support::HfRefs;

struct Agreement {
    double max_abs_diff = 0;
    int same_argmax = 0;
    int positions = 0;
};

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

Agreement compare_with_hf(const std::string& model_file, const std::string& refs_file, gguf::GgmlType kv_type) {
    const auto model = runtime::Model::load(fixture(model_file).string());
    const HfRefs refs = HfRefs::load(fixture(refs_file).string());
    EXPECT_EQ(refs.n_vocab, model->n_vocab());
    runtime::ContextParams params;
    params.n_ctx = static_cast<int>(refs.n_tok);
    params.type_k = params.type_v = kv_type;
    // one thread: the suite shares two cores with parallel builds, where spinning OpenMP barriers
    // crawl; ThreadCountDoesNotChangeLogits covers the parallel paths
    params.n_threads = 1;
    runtime::Context ctx(*model, params);
    Agreement a;
    const int V = model->n_vocab();
    for (int64_t s = 0; s < refs.n_seq; ++s) {
        ctx.truncate(0);
        const auto logits = ctx.decode({refs.seq_tokens(s), static_cast<size_t>(refs.n_tok)}, true);
        for (int64_t t = 0; t < refs.n_tok; ++t) {
            const float* ours = logits.data() + t * V;
            const float* theirs = refs.row_logits(s, t);
            for (int i = 0; i < V; ++i) a.max_abs_diff = std::max(a.max_abs_diff, std::fabs(double(ours[i]) - theirs[i]));
            a.same_argmax += argmax(ours, V) == argmax(theirs, V);
            ++a.positions;
        }
    }
    std::printf("%s (kv %s): max |diff| %.3g, same argmax %d/%d\n", model_file.c_str(),
                std::string(gguf::type_name(kv_type)).c_str(), a.max_abs_diff, a.same_argmax, a.positions);
    return a;
}

void expect_matches_hf(const Agreement& a) {
    EXPECT_LE(a.max_abs_diff, 1e-2);
    EXPECT_GE(a.same_argmax, static_cast<int>(std::ceil(0.995 * a.positions)));
}

TEST(LogitsVsHf, DenseLlama) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    expect_matches_hf(compare_with_hf("gguf/tiny-dense-bf16.gguf", "hf/tiny-dense/refs.safetensors", gguf::GgmlType::F32));
}

TEST(LogitsVsHf, DenseLlamaF16Cache) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    expect_matches_hf(compare_with_hf("gguf/tiny-dense-bf16.gguf", "hf/tiny-dense/refs.safetensors", gguf::GgmlType::F16));
}

TEST(LogitsVsHf, MoeQwen3) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    expect_matches_hf(compare_with_hf("gguf/tiny-moe-bf16.gguf", "hf/tiny-moe/refs.safetensors", gguf::GgmlType::F32));
}

TEST(LogitsVsHf, MoeQwen3F16Cache) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    expect_matches_hf(compare_with_hf("gguf/tiny-moe-bf16.gguf", "hf/tiny-moe/refs.safetensors", gguf::GgmlType::F16));
}

// Rows are split across threads, never reduced across them: any thread count gives the same bits.
TEST(LogitsVsHf, ThreadCountDoesNotChangeLogits) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto model = runtime::Model::load(fixture("gguf/tiny-moe-bf16.gguf").string());
    const HfRefs refs = HfRefs::load(fixture("hf/tiny-moe/refs.safetensors").string());
    std::vector<float> results[2];
    for (int threads : {1, 2}) {
        runtime::ContextParams params;
        params.n_ctx = 64;
        params.n_threads = threads;
        runtime::Context ctx(*model, params);
        ctx.decode({refs.seq_tokens(1), 48}, true);
        const auto last = ctx.decode({refs.seq_tokens(1) + 48, 1});
        results[threads - 1].assign(last.begin(), last.end());
    }
    EXPECT_EQ(results[0], results[1]);
}

// Token-at-a-time decoding reads back what batched decoding wrote to the KV cache: both must agree.
TEST(LogitsVsHf, IncrementalDecodeMatchesBatch) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const auto model = runtime::Model::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    const HfRefs refs = HfRefs::load(fixture("hf/tiny-dense/refs.safetensors").string());
    runtime::ContextParams params;
    params.n_ctx = 128;
    // an f32 cache: with f16, rounding flips from the different summation order of batched matmuls
    // would hide a cache bug under 1e-3 noise
    params.type_k = params.type_v = gguf::GgmlType::F32;
    params.n_threads = 1;
    runtime::Context ctx(*model, params);
    const int V = model->n_vocab();
    const auto batch = ctx.decode({refs.seq_tokens(0), 128}, true);
    const std::vector<float> all(batch.begin(), batch.end());
    ctx.truncate(0);
    ctx.decode({refs.seq_tokens(0), 40});
    double worst = 0;
    for (int t = 40; t < 128; ++t) {
        const auto one = ctx.decode({refs.seq_tokens(0) + t, 1});
        for (int i = 0; i < V; ++i) worst = std::max(worst, std::fabs(double(one[i]) - all[t * V + i]));
    }
    EXPECT_LE(worst, 1e-4);
    EXPECT_EQ(ctx.n_past(), 128);
}

// A context made for the last token's logits (n_outputs = 1: generation, benchmarks) gives the last row
// as a context that could return every row does, and refuses all rows of more than one token with a clear
// error before running anything.
TEST(LogitsVsHf, OneOutputRowGivesTheLastTokensLogits) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const auto model = runtime::Model::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    const HfRefs refs = HfRefs::load(fixture("hf/tiny-dense/refs.safetensors").string());
    runtime::ContextParams params;
    params.n_ctx = 64;
    params.n_threads = 1;
    runtime::Context all(*model, params);
    params.n_outputs = 1;
    runtime::Context last(*model, params);
    const auto want = all.decode({refs.seq_tokens(0), 32});
    const std::vector<float> last_row(want.begin(), want.end());
    EXPECT_THROW(last.decode({refs.seq_tokens(0), 32}, true), runtime::Error);
    EXPECT_EQ(last.n_past(), 0);
    const auto got = last.decode({refs.seq_tokens(0), 32});
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), last_row);
    EXPECT_NO_THROW(last.decode({refs.seq_tokens(0) + 32, 1}, true));  // one row is within n_outputs
    params.n_outputs = -1;
    EXPECT_THROW(runtime::Context(*model, params), runtime::Error);
}

}  // namespace
