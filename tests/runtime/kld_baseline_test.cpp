// The compact baseline on the fixture models: tiny-dense bf16 is the base, Q8_0 and Q2_K (no imatrix) made
// by our quantizer are the models under test. The compact figures must bracket the exact ones computed from
// both models' full logits (mean and p99 KLD), and PPL, base PPL and same-top must agree. The measured gaps
// are printed; docs/verify.md quotes them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "gguf/file.h"
#include "quant/recipe.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/kld_baseline.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;

constexpr int kChunks = 4;
constexpr int kCtx = 256;

class CompactBaseline : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (!fs::exists(fixture("gguf/tiny-dense-bf16.gguf")) || !fs::exists(fixture("text/dev_eval.txt"))) return;
        dir_ = new fs::path(fs::temp_directory_path() / ("kld-baseline-" + std::to_string(::getpid())));
        fs::create_directories(*dir_);
        const gguf::File in = gguf::File::open(fixture("gguf/tiny-dense-bf16.gguf").string());
        for (const char* recipe : {"Q8_0", "Q2_K"}) {
            quant::PlanInputs inputs;
            inputs.recipe = quant::find_recipe(recipe);
            quant::write_quantized(in, quant::make_plan(in, inputs), nullptr, (*dir_ / (std::string(recipe) + ".gguf")).string());
        }
    }
    static void TearDownTestSuite() {
        if (dir_) fs::remove_all(*dir_);
        delete dir_;
        dir_ = nullptr;
    }
    void SetUp() override {
        REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
        REQUIRE_FIXTURE("text/dev_eval.txt");
    }

    static runtime::ContextParams context_params() {
        runtime::ContextParams p;
        p.n_ctx = kCtx;
        p.n_threads = 1;  // the suite shares two cores with builds
        return p;
    }

    static std::vector<int32_t> tokens(const runtime::Model& m) {
        std::ifstream in(fixture("text/dev_eval.txt"), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return runtime::Tokenizer::from_metadata(m.metadata())->encode(ss.str(), true, false);
    }

    static runtime::PerplexityParams params() {
        runtime::PerplexityParams p;
        p.n_ctx = kCtx;
        p.n_chunks = kChunks;
        return p;
    }

    static fs::path* dir_;
};
fs::path* CompactBaseline::dir_ = nullptr;

TEST_F(CompactBaseline, BracketsTheFullComputation) {
    const auto base = runtime::Model::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    runtime::Context base_ctx(*base, context_params());
    const auto toks = tokens(*base);
    // top-32 alone (the upper bound is loose there) and the default: top-32 and more until the rest <= 1e-3
    for (const runtime::CompactParams cp : {runtime::CompactParams{32, 1.0}, runtime::CompactParams{32, 1e-3}}) {
        const int k = cp.top_k;
        const fs::path file = *dir_ / ("base-" + std::to_string(cp.max_rest) + ".bin");
        const auto base_ppl = runtime::save_compact_baseline(base_ctx, toks, params(), cp, file.string());
        EXPECT_EQ(runtime::read_compact_baseline_info(file.string()).params.max_rest, cp.max_rest);
        std::printf("K=%d rest<=%g: %.1f KiB for %lld positions (full f16 logits: %.1f KiB)\n", k, cp.max_rest,
                    static_cast<double>(fs::file_size(file)) / 1024, static_cast<long long>(base_ppl.n_scored),
                    static_cast<double>(base_ppl.n_scored) * base_ctx.n_vocab() * 2 / 1024);
        for (const char* recipe : {"Q8_0", "Q2_K"}) {
            const auto test = runtime::Model::load((*dir_ / (std::string(recipe) + ".gguf")).string());
            runtime::Context test_ctx(*test, context_params());
            const auto exact = runtime::compare_models(base_ctx, test_ctx, toks, params());
            const auto compact = runtime::compare_compact_baseline(test_ctx, file.string());
            std::printf("  %-5s full: mean %.6f p99 %.6f | compact: mean [%.6f, %.6f] p99 [%.6f, %.6f] | "
                        "same-top %.4f vs %.4f | %.1f tokens/position\n",
                        recipe, exact.mean_kld, exact.p99_kld, compact.mean_kld_lower, compact.mean_kld,
                        compact.p99_kld_lower, compact.p99_kld, exact.same_top, compact.same_top, compact.mean_stored);
            ASSERT_TRUE(exact.exact);
            ASSERT_FALSE(compact.exact);
            EXPECT_EQ(compact.n_positions, exact.n_positions);
            EXPECT_LE(compact.mean_kld_lower, exact.mean_kld * (1 + 1e-6) + 1e-9) << recipe << " K=" << k;
            EXPECT_GE(compact.mean_kld, exact.mean_kld * (1 - 1e-6) - 1e-9) << recipe << " K=" << k;
            EXPECT_LE(compact.p99_kld_lower, exact.p99_kld * (1 + 1e-6) + 1e-9) << recipe << " K=" << k;
            EXPECT_GE(compact.p99_kld, exact.p99_kld * (1 - 1e-6) - 1e-9) << recipe << " K=" << k;
            // every position bracketed, not only the aggregates
            ASSERT_EQ(compact.klds.size(), exact.klds.size());
            for (size_t i = 0; i < exact.klds.size(); ++i) {
                ASSERT_GE(compact.klds[i], exact.klds[i] * (1 - 1e-6) - 1e-9) << recipe << " position " << i;
            }
            EXPECT_NEAR(compact.ppl, exact.ppl, exact.ppl * 1e-6);
            EXPECT_NEAR(compact.base_ppl, exact.base_ppl, exact.base_ppl * 1e-5);
            EXPECT_NEAR(compact.same_top, exact.same_top, 1e-12);
            // size: 14 bytes a position and at most 6 a stored token (a float and an id gap of 1-2 bytes)
            const double row_bytes = static_cast<double>(fs::file_size(file) - 40 - kChunks * kCtx * 4) /
                                     static_cast<double>(compact.n_positions);
            EXPECT_LE(row_bytes, 14 + 6 * compact.mean_stored) << recipe;
        }
        // even on this 4,096-token vocabulary and these uncertain models (~1,300 tokens a position at the
        // default), smaller than llama.cpp's f16 logits; the size does not grow with the vocabulary
        EXPECT_LT(fs::file_size(file), static_cast<uint64_t>(base_ppl.n_scored) * base_ctx.n_vocab() * 2);
    }
}

TEST_F(CompactBaseline, DamagedFilesGiveOneError) {
    const auto base = runtime::Model::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    runtime::Context ctx(*base, context_params());
    const fs::path file = *dir_ / "damaged.bin";
    runtime::PerplexityParams p = params();
    p.n_chunks = 1;
    runtime::save_compact_baseline(ctx, tokens(*base), p, {4, 1.0}, file.string());
    // truncated
    fs::resize_file(file, fs::file_size(file) - 3);
    EXPECT_THROW(runtime::compare_compact_baseline(ctx, file.string()), runtime::Error);
    // not a baseline at all
    EXPECT_THROW(runtime::compare_compact_baseline(ctx, fixture("text/dev_eval.txt").string()), runtime::Error);
    // a token id past the vocabulary inside the first row: after the 40-byte header, the 256 tokens, the
    // row's next-token log-probability (4), remaining mass (8), count and top place (a byte each), the
    // first id's gap becomes the varint 2^28 - 1
    const auto damage = [&](std::streamoff at, const std::string& bytes, const char* expected) {
        runtime::save_compact_baseline(ctx, tokens(*base), p, {4, 1.0}, file.string());
        {
            std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(at);
            f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        }
        try {
            runtime::compare_compact_baseline(ctx, file.string());
            FAIL() << "a damaged row was accepted";
        } catch (const runtime::Error& e) {
            EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
        }
    };
    damage(40 + kCtx * 4 + 14, "\xff\xff\xff\x7f", "damaged token ids");
    // a probability above 1 (the last row's last float becomes 2.0)
    const float two = 2.0f;
    damage(static_cast<std::streamoff>(fs::file_size(file) - 4), std::string(reinterpret_cast<const char*>(&two), 4),
           "damaged probabilities");
    // no token stored
    damage(40 + kCtx * 4 + 12, std::string(1, '\0'), "0 tokens stored");
}

}  // namespace
