// The CUDA backend against the CPU backend, model by model: the fixture models in bf16 and quantized
// with every recipe of llama.cpp's REFERENCE.md table, whole on the GPU and split (experts on the CPU).
// Prompt logits (the batched kernels), token-by-token decode logits (the mat-vec kernels and the
// recorded graphs) and perplexity must agree. Needs a CUDA device and ../shared; skips without either.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <dlfcn.h>
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

// Device memory in use, read through NVML (the driver's management library, opened at run time), which
// does not create a CUDA context. Read once before main, before this process touched CUDA, it is what
// others hold; read later, the difference is this process's whole footprint, its CUDA context included.
class Nvml {
public:
    static Nvml& get() {
        static Nvml n;
        return n;
    }
    bool ok() const { return get_memory_ != nullptr; }
    uint64_t used(void* device) const {
        Memory m{};
        return get_memory_(device, &m) == 0 ? m.used : 0;
    }
    uint64_t used_at_start(void* device) const {
        for (const auto& [h, used] : at_start_) {
            if (h == device) return used;
        }
        return 0;
    }
    void* handle_of_cuda_device(int ordinal) const {
        char bus[32] = {};
        void* h = nullptr;
        if (cudaDeviceGetPCIBusId(bus, sizeof bus, ordinal) != cudaSuccess || by_bus_(bus, &h) != 0) return nullptr;
        return h;
    }

private:
    struct Memory {
        unsigned long long total, free, used;
    };
    Nvml() {
        void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
        if (!lib) return;
        const auto init = reinterpret_cast<int (*)()>(dlsym(lib, "nvmlInit_v2"));
        const auto count = reinterpret_cast<int (*)(unsigned*)>(dlsym(lib, "nvmlDeviceGetCount_v2"));
        const auto by_index = reinterpret_cast<int (*)(unsigned, void**)>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
        by_bus_ = reinterpret_cast<int (*)(const char*, void**)>(dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2"));
        const auto memory = reinterpret_cast<int (*)(void*, Memory*)>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
        unsigned n = 0;
        if (!init || !count || !by_index || !by_bus_ || !memory || init() != 0 || count(&n) != 0) return;
        get_memory_ = memory;
        for (unsigned i = 0; i < n; ++i) {
            void* h = nullptr;
            if (by_index(i, &h) == 0) at_start_.emplace_back(h, used(h));
        }
    }
    int (*by_bus_)(const char*, void**) = nullptr;
    int (*get_memory_)(void*, Memory*) = nullptr;
    std::vector<std::pair<void*, uint64_t>> at_start_;
};
// before main: the baseline
[[maybe_unused]] const bool kNvmlBaseline = (Nvml::get(), true);

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

// The same model with every weight dequantized to f32 (llama-quantize's --allow-requantize to F32): the
// exact arithmetic of the quantized weights, as the reference both backends' rounding is measured against.
std::string exact_file(const std::string& model, const std::string& recipe) {
    const std::string in = model_file(model, recipe);
    const auto out = std::filesystem::path(in).replace_extension(".f32.gguf");
    if (!std::filesystem::exists(out)) {
        const gguf::File file = gguf::File::open(in);
        quant::PlanInputs inputs;
        inputs.recipe = quant::find_recipe("F32");
        inputs.allow_requantize = true;
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

// How far logits are from a reference's: largest |difference|, mean KL divergence of the softmaxes
// (reference first) and how often the top token is the same.
struct Distance {
    float max_abs = 0;
    double kld = 0;
    int positions = 0, same_argmax = 0;
    void add(std::span<const float> ref, std::span<const float> x) {
        const float rmax = *std::max_element(ref.begin(), ref.end());
        const float xmax = *std::max_element(x.begin(), x.end());
        double rs = 0, xs = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
            max_abs = std::max(max_abs, std::fabs(ref[i] - x[i]));
            rs += std::exp(static_cast<double>(ref[i] - rmax));
            xs += std::exp(static_cast<double>(x[i] - xmax));
        }
        double kl = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
            const double lr = ref[i] - rmax - std::log(rs), lx = x[i] - xmax - std::log(xs);
            kl += std::exp(lr) * (lr - lx);
        }
        kld += kl;
        ++positions;
        same_argmax += std::max_element(ref.begin(), ref.end()) == ref.begin() + (std::max_element(x.begin(), x.end()) - x.begin());
    }
    double mean_kld() const { return positions ? kld / positions : 0; }
};

// Logits of the first 96 tokens of dev_eval.txt as one prompt, then of 16 more decoded one at a time.
struct Logits {
    std::vector<float> prompt;               // 96 rows
    std::vector<std::vector<float>> decode;  // 16 rows
};

Logits run(const runtime::Model& model, const std::vector<int32_t>& ids) {
    runtime::Context ctx(model, params());
    Logits out;
    const auto l = ctx.decode(std::span<const int32_t>(ids.data(), 96), true);
    out.prompt.assign(l.begin(), l.end());
    for (size_t t = 96; t < 112; ++t) {
        const auto d = ctx.decode({&ids[t], 1});
        out.decode.emplace_back(d.begin(), d.end());
    }
    return out;
}

struct Distances {
    Distance prompt, decode;
};

Distances distance(const Logits& ref, const Logits& x, size_t V) {
    Distances d;
    for (size_t t = 0; t < 96; ++t) {
        d.prompt.add(std::span<const float>(ref.prompt).subspan(t * V, V), std::span<const float>(x.prompt).subspan(t * V, V));
    }
    for (size_t t = 0; t < ref.decode.size(); ++t) d.decode.add(ref.decode[t], x.decode[t]);
    return d;
}

void print(const std::string& label, const char* what, const Distances& d) {
    std::printf("%-30s %-10s prompt max|d| %-9.3g KLD %-9.3g argmax %d/%d   decode max|d| %-9.3g KLD %-9.3g argmax %d/%d\n",
                label.c_str(), what, d.prompt.max_abs, d.prompt.mean_kld(), d.prompt.same_argmax, d.prompt.positions,
                d.decode.max_abs, d.decode.mean_kld(), d.decode.same_argmax, d.decode.positions);
}

// The GPU's logits against the CPU's. Float weights: the two must agree closely. Quantized weights: both
// backends round activations to 8 bits (the CPU in 256-element q8_K blocks, the GPU in 32-element q8_1
// blocks), which turns last-bit float differences into whole quantization steps and, in a MoE, now and
// then into another expert, so the two differ by as much as the CPU's own AVX2 and AVX-512 kernels do
// (docs/benchmarks.md). The bound there is the exact arithmetic of the same weights: the model with every
// weight dequantized to f32, run on the CPU without activation rounding. Over the 112 positions (prompt and
// decode), the GPU's mean KL divergence from it must be at most twice the CPU's, and its top token may
// differ from the exact one at most 3 positions more often than the CPU's does. The largest |logit|
// difference is printed, not bounded: one expert chosen differently decides it.
void compare(const std::string& model, const std::string& recipe, const runtime::ModelOptions& gpu_options,
             const std::string& label) {
    const std::string path = model_file(model, recipe);
    const auto cpu_model = runtime::Model::load(path);
    const auto gpu_model = runtime::Model::load(path, gpu_options);
    const auto tok = runtime::Tokenizer::from_metadata(cpu_model->metadata());
    const auto ids = tok->encode(text("text/dev_eval.txt").substr(0, 4000), false, false);
    ASSERT_GE(ids.size(), 112u);
    const Logits cpu = run(*cpu_model, ids), gpu = run(*gpu_model, ids);
    const size_t V = cpu.prompt.size() / 96;
    const Distances direct = distance(cpu, gpu, V);
    print(label, "GPU-CPU", direct);
    if (recipe.empty()) {
        for (const Distance* d : {&direct.prompt, &direct.decode}) {
            EXPECT_LE(d->max_abs, 1e-2f) << label;
            EXPECT_GE(d->same_argmax * 1000, d->positions * 995) << label;
        }
        return;
    }
    const auto exact_model = runtime::Model::load(exact_file(model, recipe));
    const Logits exact = run(*exact_model, ids);
    const Distances c = distance(exact, cpu, V), g = distance(exact, gpu, V);
    print(label, "CPU-exact", c);
    print(label, "GPU-exact", g);
    const double cpu_kld = c.prompt.kld + c.decode.kld, gpu_kld = g.prompt.kld + g.decode.kld;
    EXPECT_LE(gpu_kld, 2 * cpu_kld + 112 * 1e-6) << label << ": mean KLD from the exact logits, GPU vs CPU";
    EXPECT_GE(g.prompt.same_argmax + g.decode.same_argmax, c.prompt.same_argmax + c.decode.same_argmax - 3)
        << label << ": top tokens equal to the exact logits', GPU vs CPU";
}

const char* const kRecipes[] = {"", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q4_K_L", "MXFP4_MOE", "Q3_K_M",
                                "Q2_K", "IQ4_XS"};

TEST(CudaBackend, LogitsMatchTheCpuOnEveryRecipe) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    for (const char* model : {"dense", "moe"}) {
        for (const char* recipe : kRecipes) {
            compare(model, recipe, on_gpu(false), std::string(model) + " " + (*recipe ? recipe : "bf16"));
        }
    }
}

// Experts on the CPU: the 96-token prompt streams them to the GPU (one slot, stage_experts; each whole
// layer copied ahead, or only the used experts as each layer comes), decode runs them on the CPU; then the
// same with streaming off (the CPU runs the prompt's experts too), and
// with only the first block's experts on the CPU.
TEST(CudaBackend, HybridLogitsMatchTheCpu) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    for (const char* recipe : {"", "Q4_K_M", "MXFP4_MOE"}) {
        const std::string name = std::string("moe ") + (*recipe ? recipe : "bf16");
        compare("moe", recipe, on_gpu(true), name + " hybrid, streamed");
        // only the experts the batch uses, copied as each layer comes (what skewed routing chooses)
        ::setenv("GGUF_STREAM_COPY", "used", 1);
        compare("moe", recipe, on_gpu(true), name + " hybrid, used experts streamed");
        ::unsetenv("GGUF_STREAM_COPY");
        runtime::ModelOptions first = on_gpu(false);
        first.placement.overrides = runtime::n_cpu_moe_rules(1);
        compare("moe", recipe, first, name + " block 0 streamed");
        ::setenv("GGUF_STREAM_MIN_TOKENS", "100000", 1);
        compare("moe", recipe, on_gpu(true), name + " hybrid, CPU experts");
        ::unsetenv("GGUF_STREAM_MIN_TOKENS");
    }
}

// Streaming reserves exactly one slot of the largest CPU-resident layer's experts: the GPU's scratch is
// that of the same context with every expert on the GPU, plus the slot.
TEST(CudaBackend, StreamingReservesOneExpertSlot) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    auto gpu_scratch = [](const runtime::Context& ctx) {
        uint64_t bytes = 0;
        for (const auto& [dev, m] : ctx.memory()) {
            if (!dev.is_cpu()) bytes += m.scratch;
        }
        return bytes;
    };
    const auto model = runtime::Model::load(model_file("moe", "Q4_K_M"), on_gpu(true));
    const runtime::Context ctx(*model, params());
    uint64_t slot = 0;
    for (const auto& L : model->weights().layers) slot = std::max(slot, runtime::expert_slot_bytes(L));
    ASSERT_GT(slot, 0u);
    EXPECT_TRUE(ctx.warnings().empty());
    const auto whole = runtime::Model::load(model_file("moe", "Q4_K_M"), on_gpu(false));
    const runtime::Context whole_ctx(*whole, params());
    EXPECT_EQ(gpu_scratch(ctx), gpu_scratch(whole_ctx) + slot);
}

// --fit never lets the process hold more device memory than the budget: from half of what the whole model
// needs (the process's footprint, its CUDA context included) to one and a half times that, each budget
// either loads, prompts (streaming the CPU's experts) and decodes within it, or is refused at load with a
// clear error (only below every budget that loads). The footprint is read through NVML as the device's
// used memory less what was in use before this process touched CUDA, as nvidia-smi would show it.
TEST(CudaBackend, FitNeverAllocatesMoreThanTheBudget) {
    REQUIRE_GPU();
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    Nvml& nvml = Nvml::get();
    if (!nvml.ok()) GTEST_SKIP() << "NVML (libnvidia-ml.so.1) not available";
    void* device = nvml.handle_of_cuda_device(0);
    ASSERT_NE(device, nullptr);
    const auto footprint = [&] { return nvml.used(device) - nvml.used_at_start(device); };
    const std::string path = model_file("moe", "Q4_K_M");
    auto p = params();
    p.n_batch = 64;
    runtime::FitOptions f;
    f.margin = 0;
    f.n_ctx = p.n_ctx;
    f.n_batch = p.n_batch;
    f.n_outputs = p.n_batch;  // the context returns every row (n_outputs 0): the plan counts as many
    f.type_k = p.type_k;
    f.type_v = p.type_v;
    const auto tok = runtime::Tokenizer::from_metadata(runtime::Model::load(path)->metadata());
    const auto ids = tok->encode(text("text/dev_eval.txt").substr(0, 2000), false, false);
    ASSERT_GE(ids.size(), 72u);
    uint64_t whole = 0;
    {
        const auto m = runtime::Model::load(path, on_gpu(false));
        runtime::Context ctx(*m, p);
        ctx.decode(std::span<const int32_t>(ids.data(), 64));
        whole = footprint();
    }
    bool loaded_once = false;
    for (int step = 0; step <= 16; ++step) {
        f.budget = whole / 2 + whole * static_cast<uint64_t>(step) / 16;
        runtime::ModelOptions o;
        o.placement.n_gpu_layers = -1;
        o.fit = f;
        try {
            const auto m = runtime::Model::load(path, o);
            runtime::Context ctx(*m, p);
            ctx.decode(std::span<const int32_t>(ids.data(), 64));
            for (size_t t = 64; t < 72; ++t) ctx.decode({&ids[t], 1});
            const uint64_t used = footprint();
            loaded_once = true;
            std::printf("budget %7.1f MiB: process holds %7.1f MiB\n", f.budget / 1048576.0, used / 1048576.0);
            EXPECT_LE(used, f.budget) << "step " << step;
        } catch (const runtime::Error& e) {
            std::printf("budget %7.1f MiB: refused: %s\n", f.budget / 1048576.0, e.what());
            EXPECT_FALSE(loaded_once) << "a larger budget was refused: " << e.what();
            EXPECT_NE(std::string(e.what()).find("fit"), std::string::npos) << e.what();
        }
    }
    EXPECT_TRUE(loaded_once);
}

// Perplexity over 8 chunks of 128 tokens. Float weights: within 0.1% of the CPU's. Quantized weights: no
// farther from the exact arithmetic of the same weights (see compare) than twice the CPU's distance plus 0.1%.
TEST(CudaBackend, PerplexityMatchesTheCpu) {
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
        const auto ppl = [&](const runtime::Model& m) {
            runtime::Context ctx(m, params());
            return runtime::perplexity(ctx, ids, pp).ppl;
        };
        const double cpu = ppl(*cpu_model), gpu = ppl(*gpu_model);
        const double exact = *recipe ? ppl(*runtime::Model::load(exact_file(model, recipe))) : cpu;
        std::printf("%s %s: PPL exact %.4f CPU %.4f (%+.3f%%) GPU %.4f (%+.3f%%)\n", model, *recipe ? recipe : "bf16",
                    exact, cpu, 100 * (cpu / exact - 1), gpu, 100 * (gpu / exact - 1));
        EXPECT_LE(std::fabs(gpu / exact - 1), 2 * std::fabs(cpu / exact - 1) + 1e-3) << model << " " << recipe;
    }
}

}  // namespace
