// The CUDA backend against the CPU backend, model by model: the fixture models in bf16 and quantized
// with every recipe of llama.cpp's REFERENCE.md table, whole on the GPU and split (experts on the CPU).
// Prompt logits (the batched kernels), token-by-token decode logits (the mat-vec kernels and the
// recorded graphs) and perplexity must agree. Needs a CUDA device and ../shared; skips without either.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "gguf/file.h"
#include "quant/recipe.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/fit.h"
#include "runtime/model.h"
#include "runtime/perplexity.h"
#include "runtime/placement.h"
#include "runtime/tokenizer.h"

namespace {

using testing_support::fixture;

bool have_gpu() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define REQUIRE_GPU() \
    do { \
        if (!have_gpu()) GTEST_SKIP() << "no CUDA device"; \
    } while (0)

std::string text(const std::string& relative) {
    std::ifstream in(fixture(relative));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The fixture model quantized with `recipe` ("" keeps bf16), written once per test binary run.
std::string model_file(const std::string& model, const std::string& recipe) {
    const std::string in = fixture("gguf/tiny-" + model + "-bf16.gguf").string();
    if (recipe.empty()) return in;
    const auto out = std::filesystem::temp_directory_path() /
                     ("cuda_backend_test_" + std::to_string(::getpid()) + "_" + model + "_" + recipe + ".gguf");
    if (!std::filesystem::exists(out)) {
        const gguf::File file = gguf::File::open(in);
        quant::PlanInputs inputs;
        inputs.recipe = quant::find_recipe(recipe);
        EXPECT_NE(inputs.recipe, nullptr) << recipe;
        quant::write_quantized(file, quant::make_plan(file, inputs), nullptr, out.string());
    }
    return out.string();
}

runtime::ModelOptions on_gpu(bool experts_on_cpu) {
    runtime::ModelOptions o;
    o.placement.n_gpu_layers = -1;
    if (experts_on_cpu) o.placement.overrides = runtime::cpu_moe_rules();
    return o;
}

runtime::ContextParams params() {
    runtime::ContextParams p;
    p.n_ctx = 256;
    p.n_batch = 128;
    p.type_k = p.type_v = gguf::GgmlType::F32;
    return p;
}

struct Agreement {
    float max_abs = 0;
    int positions = 0, same_argmax = 0;
    void add(std::span<const float> a, std::span<const float> b) {
        for (size_t i = 0; i < a.size(); ++i) max_abs = std::max(max_abs, std::fabs(a[i] - b[i]));
        const auto am = std::max_element(a.begin(), a.end()) - a.begin();
        const auto bm = std::max_element(b.begin(), b.end()) - b.begin();
        ++positions;
        same_argmax += am == bm;
    }
};

// Logits of the first 96 tokens of dev_eval.txt as one prompt, then 16 more decoded one at a time.
void compare(const std::string& path, const runtime::ModelOptions& gpu_options, const std::string& label) {
    const auto cpu_model = runtime::Model::load(path);
    const auto gpu_model = runtime::Model::load(path, gpu_options);
    const auto tok = runtime::Tokenizer::from_metadata(cpu_model->metadata());
    const auto ids = tok->encode(text("text/dev_eval.txt").substr(0, 4000), false, false);
    ASSERT_GE(ids.size(), 112u);
    runtime::Context cpu(*cpu_model, params()), gpu(*gpu_model, params());
    const size_t V = static_cast<size_t>(cpu.n_vocab());
    Agreement prompt, decode;
    const std::span<const int32_t> first(ids.data(), 96);
    const auto lc = cpu.decode(first, true);
    const std::vector<float> cpu_logits(lc.begin(), lc.end());
    const auto lg = gpu.decode(first, true);
    for (size_t t = 0; t < 96; ++t) {
        prompt.add(std::span<const float>(cpu_logits).subspan(t * V, V), lg.subspan(t * V, V));
    }
    for (size_t t = 96; t < 112; ++t) {
        const auto c = cpu.decode({&ids[t], 1});
        const std::vector<float> cv(c.begin(), c.end());
        decode.add(cv, gpu.decode({&ids[t], 1}));
    }
    std::printf("%-28s prompt max|d| %.3g argmax %d/%d   decode max|d| %.3g argmax %d/%d\n", label.c_str(),
                prompt.max_abs, prompt.same_argmax, prompt.positions, decode.max_abs, decode.same_argmax,
                decode.positions);
    EXPECT_LE(prompt.max_abs, 1e-2f) << label << " (prompt)";
    EXPECT_GE(prompt.same_argmax * 1000, prompt.positions * 995) << label << " (prompt)";
    EXPECT_LE(decode.max_abs, 1e-2f) << label << " (decode)";
    EXPECT_GE(decode.same_argmax * 1000, decode.positions * 995) << label << " (decode)";
}

const char* const kRecipes[] = {"", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q4_K_L", "MXFP4_MOE", "Q3_K_M",
                                "Q2_K", "IQ4_XS"};

TEST(CudaBackend, LogitsMatchTheCpuOnEveryRecipe) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    for (const char* model : {"dense", "moe"}) {
        for (const char* recipe : kRecipes) {
            compare(model_file(model, recipe), on_gpu(false), std::string(model) + " " + (*recipe ? recipe : "bf16"));
        }
    }
}

// Experts on the CPU: the 96-token prompt streams them to the GPU (two slots, stage_experts; whole
// layers ahead, or only the used experts as each layer comes), decode runs them on the CPU; then the
// same with streaming off (the CPU runs the prompt's experts too), and
// with only the first block's experts on the CPU.
TEST(CudaBackend, HybridLogitsMatchTheCpu) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    for (const char* recipe : {"", "Q4_K_M", "MXFP4_MOE"}) {
        const std::string path = model_file("moe", recipe), name = std::string("moe ") + (*recipe ? recipe : "bf16");
        compare(path, on_gpu(true), name + " hybrid, streamed");
        // only the experts the batch uses, copied as each layer comes (what skewed routing chooses)
        ::setenv("GGUF_STREAM_COPY", "used", 1);
        compare(path, on_gpu(true), name + " hybrid, used experts streamed");
        ::unsetenv("GGUF_STREAM_COPY");
        runtime::ModelOptions first = on_gpu(false);
        first.placement.overrides = runtime::n_cpu_moe_rules(1);
        compare(path, first, name + " block 0 streamed");
        ::setenv("GGUF_STREAM_MIN_TOKENS", "100000", 1);
        compare(path, on_gpu(true), name + " hybrid, CPU experts");
        ::unsetenv("GGUF_STREAM_MIN_TOKENS");
    }
}

TEST(CudaBackend, StreamingReservesTwoExpertSlots) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto model = runtime::Model::load(model_file("moe", "Q4_K_M"), on_gpu(true));
    const runtime::Context ctx(*model, params());
    uint64_t slot = 0;
    for (const auto& L : model->weights().layers) slot = std::max(slot, runtime::expert_slot_bytes(L));
    ASSERT_GT(slot, 0u);
    uint64_t gpu_scratch = 0;
    for (const auto& [dev, m] : ctx.memory()) {
        if (!dev.is_cpu()) gpu_scratch += m.scratch;
    }
    EXPECT_GE(gpu_scratch, 2 * slot);
    EXPECT_TRUE(ctx.warnings().empty());
}

// --fit never plans more than the budget holds: from half of what the whole model needs to one and a half
// times that, each budget either loads, prompts (streaming the CPU's experts) and decodes with the device memory
// it allocates (free memory before and after, the CUDA context excluded) within the budget less the
// context's share, or is refused at load with a clear error (only below every budget that loads).
TEST(CudaBackend, FitNeverAllocatesMoreThanTheBudget) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const std::string path = model_file("moe", "Q4_K_M");
    const auto ids = runtime::Tokenizer::from_metadata(runtime::Model::load(path)->metadata())
                         ->encode(text("text/dev_eval.txt").substr(0, 2000), false, false);
    ASSERT_GE(ids.size(), 72u);
    runtime::ContextParams p = params();
    runtime::FitOptions f;
    f.margin = 0;
    f.n_ctx = p.n_ctx;
    f.n_batch = p.n_batch;
    f.type_k = p.type_k;
    f.type_v = p.type_v;
    // what the whole model needs: weights, KV cache and scratch above the context's share
    runtime::ModelOptions all = on_gpu(false);
    all.placement.n_gpu_layers = -1;
    uint64_t whole = 0;
    {
        size_t free0 = 0, free1 = 0, total = 0;
        cudaFree(nullptr);
        cudaMemGetInfo(&free0, &total);
        const auto m = runtime::Model::load(path, all);
        runtime::Context ctx(*m, p);
        ctx.decode(std::span<const int32_t>(ids.data(), 64));
        cudaMemGetInfo(&free1, &total);
        whole = free0 - free1;
    }
    bool loaded_once = false;
    for (int step = 0; step <= 16; ++step) {
        const uint64_t above = whole / 2 + whole * static_cast<uint64_t>(step) / 16;
        f.budget = runtime::kCudaContextBytes + above;
        runtime::ModelOptions o;
        o.placement.n_gpu_layers = -1;
        o.fit = f;
        size_t free0 = 0, free1 = 0, total = 0;
        cudaMemGetInfo(&free0, &total);
        try {
            const auto m = runtime::Model::load(path, o);
            runtime::Context ctx(*m, p);
            ctx.decode(std::span<const int32_t>(ids.data(), 64));
            for (size_t t = 64; t < 72; ++t) ctx.decode({&ids[t], 1});
            cudaMemGetInfo(&free1, &total);
            loaded_once = true;
            std::printf("budget %llu + context: allocated %llu\n", static_cast<unsigned long long>(above),
                        static_cast<unsigned long long>(free0 - free1));
            EXPECT_LE(free0 - free1, above) << "step " << step;
        } catch (const runtime::Error& e) {
            EXPECT_FALSE(loaded_once) << "a larger budget was refused: " << e.what();
            EXPECT_NE(std::string(e.what()).find("fit"), std::string::npos) << e.what();
        }
    }
    EXPECT_TRUE(loaded_once);
}

TEST(CudaBackend, PerplexityWithinATenthOfAPercent) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    for (const auto& [model, recipe] : {std::pair{"dense", "Q8_0"}, std::pair{"moe", "Q4_K_M"}, std::pair{"moe", ""}}) {
        const std::string path = model_file(model, recipe);
        const auto cpu_model = runtime::Model::load(path);
        const auto gpu_model = runtime::Model::load(path, on_gpu(false));
        const auto tok = runtime::Tokenizer::from_metadata(cpu_model->metadata());
        const auto ids = tok->encode(text("text/dev_eval.txt"), false, false);
        runtime::PerplexityParams pp;
        pp.n_ctx = 128;
        pp.n_chunks = 8;
        runtime::Context cpu(*cpu_model, params()), gpu(*gpu_model, params());
        const double a = runtime::perplexity(cpu, ids, pp).ppl, b = runtime::perplexity(gpu, ids, pp).ppl;
        std::printf("%s %s: PPL CPU %.4f GPU %.4f (%+.3f%%)\n", model, *recipe ? recipe : "bf16", a, b,
                    100 * (b / a - 1));
        EXPECT_NEAR(b / a, 1.0, 1e-3) << model << " " << recipe;
    }
}

}  // namespace
