// gguf-run bench: prompt processing (pp) and generation (tg) throughput as llama-bench measures them:
// each test on an empty context with random tokens, after one warm-up run, averaged over repetitions.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "modes.h"
#include "options.h"

namespace gguf_run {

namespace {

// llama-bench's backend column: where the weights are, the GPU first ("CUDA", "CUDA+CPU", "CPU"). The
// token embedding, which always stays on the CPU, does not count.
std::string backend_label(const runtime::Model& model) {
    bool cpu = false, gpu = false;
    for (const auto& t : model.plan().tensors()) {
        if (t.name == "token_embd.weight" || t.bytes == 0) continue;
        (t.device.is_cpu() ? cpu : gpu) = true;
    }
    if (!gpu) return "CPU";
    return cpu ? "CUDA+CPU" : "CUDA";
}

struct TestResult {
    std::string name;  // "pp512", "tg128"
    int n_tokens;
    double mean_tps, stddev_tps;
};

template <typename Run>
TestResult measure(const std::string& name, int n_tokens, int reps, Run run) {
    run();  // warm-up: page in the weights, settle the thread pool
    std::vector<double> tps;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        run();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        tps.push_back(n_tokens / s);
    }
    double mean = 0, var = 0;
    for (double v : tps) mean += v / reps;
    for (double v : tps) var += (v - mean) * (v - mean);
    return {name, n_tokens, mean, reps > 1 ? std::sqrt(var / (reps - 1)) : 0.0};
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
    CommonOptions common;
    int n_prompt = 512, n_gen = 128, reps = 5;
    po::options_description desc("Options");
    common.add_to(desc, 0);
    desc.add_options()
        ("n-prompt,p", po::value<int>(&n_prompt)->default_value(512), "prompt tokens per pp test (0: skip)")
        ("n-gen,n", po::value<int>(&n_gen)->default_value(128), "tokens per tg test (0: skip)")
        ("repetitions,r", po::value<int>(&reps)->default_value(5), "repetitions of each test");
    po::variables_map vm;
    po::parsed_options parsed(nullptr);
    if (!parse(args, desc, nullptr, "Usage: gguf-run bench -m MODEL [-p 512] [-n 128] [-r 5] [-t N] [--json]", vm,
               &parsed)) {
        return 0;
    }
    if (n_prompt < 0 || n_gen < 0 || (n_prompt == 0 && n_gen == 0)) {
        throw appcommon::UsageError{"-p and -n must be >= 0, and one of them > 0"};
    }
    if (reps < 1) throw appcommon::UsageError{"-r must be >= 1"};
    if (common.ctx_size == 0) common.ctx_size = std::max(n_prompt, n_gen);
    if (vm["batch-size"].defaulted()) common.batch_size = std::max(n_prompt, 1);
    // before loading: the context is exactly -c (or the test's size), so a too small one is known now
    if (std::max(n_prompt, n_gen) > common.ctx_size) {
        throw appcommon::UsageError{"the context (-c " + std::to_string(common.ctx_size) + ") is smaller than the test"};
    }
    Loaded l = load(common, parsed, false);
    runtime::Context& ctx = *l.context;
    if (std::max(n_prompt, n_gen) > ctx.n_ctx()) {
        throw appcommon::UsageError{"the context (-c " + std::to_string(ctx.n_ctx()) + ") is smaller than the test"};
    }

    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> any_token(0, ctx.n_vocab() - 1);
    std::vector<int32_t> tokens(static_cast<size_t>(std::max(n_prompt, n_gen)));
    for (auto& t : tokens) t = any_token(rng);

    std::vector<TestResult> results;
    if (n_prompt > 0) {
        results.push_back(measure("pp" + std::to_string(n_prompt), n_prompt, reps, [&] {
            ctx.truncate(0);
            ctx.decode({tokens.data(), static_cast<size_t>(n_prompt)});
        }));
    }
    if (n_gen > 0) {
        results.push_back(measure("tg" + std::to_string(n_gen), n_gen, reps, [&] {
            ctx.truncate(0);
            for (int i = 0; i < n_gen; ++i) ctx.decode({&tokens[static_cast<size_t>(i)], 1});
        }));
    }

    const std::string desc_text = model_description(*l.model);
    const std::string backend = backend_label(*l.model);
    if (common.json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object().field("model", common.model).field("description", desc_text);
        j.field("size_bytes", l.model->weight_bytes()).field("params", l.model->n_params());
        j.field("backend", backend).field("threads", ctx.n_threads()).field("repetitions", reps);
        j.key("tests").begin_array();
        for (const auto& r : results) {
            j.begin_object()
                .field("test", r.name)
                .field("n_tokens", r.n_tokens)
                .field("tokens_per_second", r.mean_tps)
                .field("stddev", r.stddev_tps)
                .end_object();
        }
        j.end_array().end_object();
        std::cout << "\n";
        return 0;
    }
    const std::string label = model_label(*l.model);
    std::printf("| %-24s | %10s | %8s | %7s | %7s | %8s | %20s |\n", "model", "size", "params", "backend", "threads",
                "test", "t/s");
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(24, '-').c_str(), std::string(10, '-').c_str(),
                std::string(8, '-').c_str(), std::string(7, '-').c_str(), std::string(7, '-').c_str(),
                std::string(8, '-').c_str(), std::string(20, '-').c_str());
    for (const auto& r : results) {
        char tps[64];
        std::snprintf(tps, sizeof tps, "%.2f ± %.2f", r.mean_tps, r.stddev_tps);
        char params[32];
        std::snprintf(params, sizeof params, "%.2f M", static_cast<double>(l.model->n_params()) / 1e6);
        std::printf("| %-24s | %10s | %8s | %7s | %7d | %8s | %20s |\n", label.c_str(),
                    runtime::format_bytes(l.model->weight_bytes()).c_str(), params, backend.c_str(), ctx.n_threads(),
                    r.name.c_str(), tps);
    }
    return 0;
}

}  // namespace gguf_run
