// gguf-run bench: prompt processing (pp), generation (tg) and combined (pp+tg) throughput as llama-bench
// measures them: each test on a fresh context (after -d tokens of depth, untimed), one warm-up run, then
// the mean and standard deviation of -r repetitions. llama-bench's comma lists run every combination.
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "appcommon/validate.h"
#include "modes.h"
#include "options.h"

namespace gguf_run {

namespace {

struct Test {
    int n_prompt = 0, n_gen = 0, n_depth = 0;
    // llama-bench's names: "pp512", "tg128", "pp512+tg128", with " @ d1024" for a depth
    std::string name() const {
        std::string s = n_prompt > 0 && n_gen > 0 ? "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen)
                        : n_prompt > 0            ? "pp" + std::to_string(n_prompt)
                                                  : "tg" + std::to_string(n_gen);
        return n_depth > 0 ? s + " @ d" + std::to_string(n_depth) : s;
    }
};

struct Result {
    std::string model, label, backend;
    uint64_t size_bytes = 0, params = 0;
    int ngl = 0, threads = 0, reps = 0;
    Test test;
    std::vector<double> samples;  // tokens per second of each repetition
    double mean() const {
        double m = 0;
        for (double v : samples) m += v / static_cast<double>(samples.size());
        return m;
    }
    double stddev() const {
        if (samples.size() < 2) return 0;
        const double m = mean();
        double var = 0;
        for (double v : samples) var += (v - m) * (v - m);
        return std::sqrt(var / static_cast<double>(samples.size() - 1));
    }
};

// "64,128" -> {64, 128}; llama-bench also takes FIRST-LAST+STEP ranges, refused here by name.
std::vector<int> int_list(const std::string& v, int min) {
    std::vector<int> out;
    std::stringstream ss(v);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(appcommon::parse_int(item, min, INT_MAX));
    if (out.empty()) throw appcommon::BadValue{"expected a number or a comma-separated list"};
    return out;
}

// Devices holding weights, from the plan: "CPU", "CUDA0+CPU".
// llama-bench's backend column: where the weights are, the GPU first ("CUDA", "CUDA+CPU", "CPU"). The
// token embedding, which always stays on the CPU, does not count.
std::string backend_of(const runtime::Model& model) {
    bool cpu = false, gpu = false;
    for (const auto& t : model.plan().tensors()) {
        if (t.name == "token_embd.weight" || t.bytes == 0) continue;
        (t.device.is_cpu() ? cpu : gpu) = true;
    }
    if (!gpu) return "CPU";
    return cpu ? "CUDA+CPU" : "CUDA";
}

void print_markdown(const std::vector<Result>& results) {
    std::printf("| %-24s | %10s | %8s | %-10s | %4s | %7s | %16s | %20s |\n", "model", "size", "params", "backend", "ngl",
                "threads", "test", "t/s");
    std::printf("| %s | %s: | %s: | %s | %s: | %s: | %s: | %s: |\n", std::string(24, '-').c_str(),
                std::string(9, '-').c_str(), std::string(7, '-').c_str(), std::string(10, '-').c_str(),
                std::string(3, '-').c_str(), std::string(6, '-').c_str(), std::string(15, '-').c_str(),
                std::string(19, '-').c_str());
    for (const auto& r : results) {
        char tps[64], params[32];
        std::snprintf(tps, sizeof tps, "%.2f ± %.2f", r.mean(), r.stddev());
        std::snprintf(params, sizeof params, "%.2f M", static_cast<double>(r.params) / 1e6);
        std::printf("| %-24s | %10s | %8s | %-10s | %4d | %7d | %16s | %20s |\n", r.label.c_str(),
                    runtime::format_bytes(r.size_bytes).c_str(), params, r.backend.c_str(), r.ngl, r.threads,
                    r.test.name().c_str(), tps);
    }
}

void write_record(appcommon::JsonWriter& j, const Result& r) {
    j.begin_object()
        .field("model", r.model)
        .field("model_type", r.label)
        .field("size_bytes", r.size_bytes)
        .field("params", r.params)
        .field("backend", r.backend)
        .field("n_gpu_layers", r.ngl)
        .field("threads", r.threads)
        .field("n_prompt", r.test.n_prompt)
        .field("n_gen", r.test.n_gen)
        .field("n_depth", r.test.n_depth)
        .field("test", r.test.name())
        .field("repetitions", r.reps)
        .field("tokens_per_second", r.mean())
        .field("stddev", r.stddev());
    j.key("samples_ts").begin_array();
    for (double v : r.samples) j.value(v);
    j.end_array().end_object();
}

std::string csv_field(const std::string& s) { return "\"" + s + "\""; }

void print_csv(const std::vector<Result>& results) {
    std::printf("model,model_type,size_bytes,params,backend,n_gpu_layers,threads,n_prompt,n_gen,n_depth,test,"
                "repetitions,tokens_per_second,stddev\n");
    for (const auto& r : results) {
        std::printf("%s,%s,%llu,%llu,%s,%d,%d,%d,%d,%d,%s,%d,%.6f,%.6f\n", csv_field(r.model).c_str(),
                    csv_field(r.label).c_str(), static_cast<unsigned long long>(r.size_bytes),
                    static_cast<unsigned long long>(r.params), csv_field(r.backend).c_str(), r.ngl, r.threads,
                    r.test.n_prompt, r.test.n_gen, r.test.n_depth, csv_field(r.test.name()).c_str(), r.reps, r.mean(),
                    r.stddev());
    }
}

// What `gguf-run bench` was asked for.
struct BenchOptions {
    CommonOptions common;
    std::vector<int> prompts{512}, gens{128}, depths{0};
    std::vector<std::pair<int, int>> pgs;
    int reps = 5;
    bool warmup = true;
    bool batch_given = false;  // -b: else the batch is the longest prompt
    std::string output = "md";
};

// Parses `args`; false when they only asked for help.
bool parse_bench_options(const std::vector<std::string>& args, BenchOptions& o) {
    appcommon::OptionSet opts("gguf-run",
                              "Usage: gguf-run bench -m MODEL [-m MODEL...] [-p 512[,N...]] [-n 128[,N...]] [-pg PP,TG]\n"
                              "                      [-d 0[,N...]] [-t N[,N...]] [-r 5] [-o md|json|jsonl|csv]\n\n"
                              "Every combination of the lists is measured, as llama-bench does.");
    o.common.add_to(opts, 0, true);
    opts.section("Tests (llama-bench's options; lists are comma-separated)");
    opts.value({"-p", "--n-prompt"}, "N,...", "prompt lengths of the pp tests (0: none)",
               [&](const std::string& v) { o.prompts = int_list(v, 0); });
    opts.value({"-n", "--n-gen"}, "N,...", "generation lengths of the tg tests (0: none)",
               [&](const std::string& v) { o.gens = int_list(v, 0); });
    opts.value({"-pg"}, "PP,TG", "a pp+tg test: PP prompt tokens then TG generated (repeatable)", [&](const std::string& v) {
        const auto l = int_list(v, 1);
        if (l.size() != 2) throw appcommon::BadValue{"expected PP,TG, got '" + v + "'"};
        o.pgs.emplace_back(l[0], l[1]);
    });
    opts.value({"-d", "--n-depth"}, "N,...", "tokens already in the context before each test (untimed)",
               [&](const std::string& v) { o.depths = int_list(v, 0); });
    opts.value({"-r", "--repetitions"}, "N", "repetitions of each test (default 5)",
               [&](const std::string& v) { o.reps = appcommon::parse_int(v, 1, INT_MAX); });
    opts.value({"-o", "--output"}, "FORMAT", "md (default), json, jsonl or csv", [&](const std::string& v) {
        if (v != "md" && v != "json" && v != "jsonl" && v != "csv") throw appcommon::BadValue{"md, json, jsonl or csv, got '" + v + "'"};
        o.output = v;
    });
    opts.flag({"--no-warmup"}, "no warm-up run before each test", [&] { o.warmup = false; });
    opts.flag({"--warmup"}, "a warm-up run before each test (the default)", [&] { o.warmup = true; });
    opts.unsupported({"-oe", "--output-err", "--progress", "-mmp", "-nopo", "--no-op-offload", "--delay", "-embd",
                      "--embeddings", "--numa", "--prio", "-C", "--cpu-mask", "--cpu-strict", "--poll"},
                     true, "not supported yet by gguf-run bench");
    add_unsupported_llama_options(opts);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return false;
    if (!opts.positional().empty()) throw appcommon::UsageError{"unexpected argument '" + opts.positional().front() + "'"};
    if (o.common.models.empty()) throw appcommon::UsageError{"no model given (-m MODEL.gguf)"};
    if (opts.given("--json")) o.output = "json";
    if (o.common.thread_list.empty()) o.common.thread_list = {0};
    o.batch_given = opts.given("-b") || opts.given("--batch-size");
    return true;
}

// Every combination of the lists, per depth: the pp tests, the tg tests, the pp+tg tests.
std::vector<Test> bench_tests(const BenchOptions& o) {
    std::vector<Test> tests;
    for (int d : o.depths) {
        for (int p : o.prompts) {
            if (p > 0) tests.push_back({p, 0, d});
        }
        for (int n : o.gens) {
            if (n > 0) tests.push_back({0, n, d});
        }
        for (const auto& [p, n] : o.pgs) tests.push_back({p, n, d});
    }
    if (tests.empty()) throw appcommon::UsageError{"-p and -n are all 0 and no -pg: nothing to measure"};
    return tests;
}

void check_context_fits(int n_ctx, int longest) {
    if (longest > n_ctx) {
        throw appcommon::UsageError{"the context (-c " + std::to_string(n_ctx) + ") is smaller than the " +
                                    std::to_string(longest) + " tokens of the longest test"};
    }
}

// Sizes the context (-c, or the longest test) and the batch (-b, or the longest prompt) before any model
// loads, so that a too small context is known at once; returns the longest test's tokens.
int size_context(BenchOptions& o, const std::vector<Test>& tests) {
    int longest = 0, longest_prompt = 1;
    for (const Test& t : tests) {
        longest = std::max(longest, t.n_depth + t.n_prompt + t.n_gen);
        longest_prompt = std::max({longest_prompt, t.n_prompt, t.n_depth});
    }
    if (o.common.ctx_size == 0) o.common.ctx_size = longest;
    if (!o.batch_given) o.common.batch_size = longest_prompt;
    check_context_fits(o.common.ctx_size, longest);
    for (int n : o.common.thread_list) {
        if (n != 0) appcommon::check_threads(n, "-t");  // 0: all cores; all checked before the first model loads
    }
    return longest;
}

// One timed run of `t` on a fresh context: the depth is decoded before the clock starts; then the prompt
// in one call, then tokens one by one. Seconds.
double timed_run(runtime::Context& ctx, const std::vector<int32_t>& tokens, const Test& t) {
    ctx.truncate(0);
    size_t at = 0;
    if (t.n_depth > 0) ctx.decode({tokens.data(), static_cast<size_t>(t.n_depth)});
    at = static_cast<size_t>(t.n_depth);
    const auto t0 = std::chrono::steady_clock::now();
    if (t.n_prompt > 0) ctx.decode({tokens.data() + at, static_cast<size_t>(t.n_prompt)});
    at += static_cast<size_t>(t.n_prompt);
    for (int i = 0; i < t.n_gen; ++i) ctx.decode({&tokens[at + static_cast<size_t>(i)], 1});
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every test on model `path` with `n_threads`, over the same random tokens.
void measure(const BenchOptions& o, const std::string& path, int n_threads, const std::vector<Test>& tests, int longest,
             std::vector<Result>& results) {
    CommonOptions common = o.common;
    common.model = path;
    common.threads = n_threads;
    common.n_outputs = 1;  // prompts and generation read the last token's logits only, as llama-bench
    Loaded l = load(common, false);
    runtime::Context& ctx = *l.context;
    check_context_fits(ctx.n_ctx(), longest);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> any_token(0, ctx.n_vocab() - 1);
    std::vector<int32_t> tokens(static_cast<size_t>(longest));
    for (auto& t : tokens) t = any_token(rng);
    for (const Test& t : tests) {
        Result r;
        r.model = path;
        r.label = model_label(*l.model);
        r.backend = backend_of(*l.model);
        r.size_bytes = l.model->weight_bytes();
        r.params = l.model->n_params();
        r.ngl = l.model->plan().n_gpu_layers();
        r.threads = ctx.n_threads();
        r.reps = o.reps;
        r.test = t;
        if (o.warmup) timed_run(ctx, tokens, t);
        for (int i = 0; i < o.reps; ++i) r.samples.push_back((t.n_prompt + t.n_gen) / timed_run(ctx, tokens, t));
        results.push_back(std::move(r));
    }
}

void print_results(const std::string& output, const std::vector<Result>& results) {
    if (output == "md") {
        print_markdown(results);
    } else if (output == "csv") {
        print_csv(results);
    } else if (output == "json") {
        appcommon::JsonWriter j(std::cout);
        j.begin_array();
        for (const auto& r : results) write_record(j, r);
        j.end_array();
    } else {
        for (const auto& r : results) {
            appcommon::JsonWriter j(std::cout, false);
            write_record(j, r);
        }
    }
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
    BenchOptions o;
    if (!parse_bench_options(args, o)) return 0;
    const std::vector<Test> tests = bench_tests(o);
    const int longest = size_context(o, tests);
    std::vector<Result> results;
    for (const std::string& path : o.common.models) {
        for (int n_threads : o.common.thread_list) measure(o, path, n_threads, tests, longest, results);
    }
    print_results(o.output, results);
    return 0;
}

}  // namespace gguf_run
