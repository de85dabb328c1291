// gguf-verify: one command that proves in CI that a GGUF is sound and good enough. Exit 0 when every check
// passed (or was skipped), 1 when one failed, 2 for a usage error. Summary on stderr, --json on stdout,
// --junit FILE for CI systems. `gguf-verify baseline` makes the compact baseline the quality gate reads.
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "appcommon/model_options.h"
#include "appcommon/options.h"
#include "appcommon/text.h"
#include "generation.h"
#include "gguf/error.h"
#include "gguf/output_file.h"
#include "manifest.h"
#include "model_check.h"
#include "quant/recipe.h"
#include "quality.h"
#include "recipe_check.h"
#include "report.h"
#include "runtime/error.h"
#include "runtime/kld_baseline.h"
#include "scan.h"

namespace {

using verify::CheckResult;

const std::vector<std::string> kChecks{"structure", "model", "scan", "recipe", "manifest", "quality", "generation"};

std::set<std::string> check_list(const std::string& list, const char* flag) {
    std::set<std::string> out;
    std::stringstream ss(list);
    std::string name;
    while (std::getline(ss, name, ',')) {
        if (std::find(kChecks.begin(), kChecks.end(), name) == kChecks.end()) {
            throw appcommon::UsageError{std::string(flag) + ": unknown check '" + name +
                                        "' (structure, model, scan, recipe, manifest, quality, generation)"};
        }
        out.insert(name);
    }
    return out;
}

void chunk_progress(int done, int total) {
    if (!appcommon::stderr_is_terminal()) return;
    std::fprintf(stderr, "\r\033[K[quality] %d/%d chunks", done, total);
    if (done == total) std::fprintf(stderr, "\r\033[K");
}

void byte_progress(uint64_t done, uint64_t total) {
    std::fprintf(stderr, "\r\033[K[scan] %3.0f%% of %.2f GB", total ? 100.0 * static_cast<double>(done) / total : 100.0,
                 static_cast<double>(total) / 1e9);
}

// One check's body: what it throws becomes its failure, so one broken part never hides the others.
// The model is -m FILE or the one positional argument (llama.cpp's tools take -m; the gate reads
// better with the file first).
void take_model(const appcommon::OptionSet& opts, appcommon::CommonOptions& common) {
    const auto& pos = opts.positional();
    if (pos.size() > 1) throw appcommon::UsageError{"unexpected argument '" + pos[1] + "'"};
    if (pos.empty()) return;
    if (!common.model.empty()) throw appcommon::UsageError{"two models given: -m " + common.model + " and " + pos[0]};
    common.model = pos[0];
}

// A number option into a double; `min`/`max` bound it.
appcommon::OptionSet::OnValue to_double(double& target, double min, double max) {
    return [&target, min, max](const std::string& v) { target = appcommon::parse_double(v, min, max); };
}
appcommon::OptionSet::OnValue to_optional(std::optional<double>& target, double min, double max) {
    return [&target, min, max](const std::string& v) { target = appcommon::parse_double(v, min, max); };
}

template <typename F>
CheckResult guarded(const std::string& name, F&& body) {
    try {
        return body();
    } catch (const appcommon::UsageError&) {
        throw;
    } catch (const std::exception& e) {
        CheckResult r;
        r.name = name;
        r.status = verify::Status::Failed;
        r.figure = "could not run";
        r.problems.push_back(e.what());
        return r;
    }
}

constexpr const char* kUsage =
    "Usage: gguf-verify MODEL.gguf [checks and thresholds] [--json] [--junit FILE]\n"
    "       gguf-verify baseline MODEL-bf16.gguf -f TEXT -o BASE.bin [-c 512] [--chunks N] [--top-k 32]\n\n"
    "Checks: structure, model, scan, recipe always; manifest with --manifest; quality with --baseline or\n"
    "--base; generation with --generate. Exit 0: all passed (or skipped), 1: a check failed, 2: usage error.";

// Throws gguf::Error when one of `outputs` (empty ones ignored) cannot be written: see gguf::check_output_path.
void check_outputs(const std::vector<std::string>& outputs, std::vector<std::string> inputs, bool replace) {
    std::erase(inputs, std::string());
    gguf::OutputPolicy policy;
    policy.replace_existing = replace;
    policy.inputs = inputs;
    for (const auto& out : outputs) {
        if (!out.empty()) gguf::check_output_path(out, policy);
    }
}

int run_baseline(const std::vector<std::string>& args) {
    appcommon::CommonOptions common;
    std::string text, out;
    int chunks = -1;
    bool force = false;
    runtime::CompactParams cp;
    appcommon::OptionSet opts("gguf-verify", "Usage: gguf-verify baseline MODEL-bf16.gguf -f TEXT -o BASE.bin [-c 512] [--chunks N] [--top-k 32]");
    common.add_to(opts, 512);
    opts.section("Baseline");
    opts.value({"-f", "--file"}, "FILE", "text to evaluate (as for perplexity)", &text);
    opts.value({"-o", "--output"}, "FILE", "compact baseline file to write", &out);
    opts.value({"--chunks"}, "N", "chunks of -c tokens to evaluate (-1: all)",
               [&](const std::string& v) { chunks = appcommon::parse_int(v, -1, INT_MAX); });
    opts.value({"--top-k"}, "N", "tokens stored per position at least (default 32)",
               [&](const std::string& v) { cp.top_k = appcommon::parse_int(v, 1, INT_MAX); });
    opts.value({"--max-rest"}, "P", "store more tokens until the probability left over is at most this (1: exactly --top-k; default 0.001)",
               to_double(cp.max_rest, 0, 1));
    opts.flag({"--force"}, "replace an existing output file", &force);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return 0;
    take_model(opts, common);
    if (text.empty()) throw appcommon::UsageError{"no text given (-f TEXT)"};
    if (out.empty()) throw appcommon::UsageError{"no output given (-o BASE.bin)"};
    if (cp.top_k < 1) throw appcommon::UsageError{"--top-k must be at least 1"};
    if (!(cp.max_rest >= 0 && cp.max_rest <= 1)) throw appcommon::UsageError{"--max-rest must be within [0, 1]"};
    if (common.ctx_size < 2) throw appcommon::UsageError{"-c must be at least 2"};
    check_outputs({out}, {common.model, text}, force);  // before the model is loaded
    appcommon::Loaded l = appcommon::load(common, true);
    const auto tokens = l.tokenizer->encode(appcommon::read_file(text), true, false);
    const auto p = runtime::perplexity_params(*l.tokenizer, l.context->n_ctx(), chunks, chunk_progress);
    const auto r = runtime::save_compact_baseline(*l.context, tokens, p, cp, out);
    const double bytes = static_cast<double>(std::filesystem::file_size(out));
    std::fprintf(stderr, "base PPL %.4f over %lld positions (%d chunks of %d); wrote %s (%.2f MB)\n", r.ppl,
                 static_cast<long long>(r.n_scored), r.n_chunks, p.n_ctx, out.c_str(), bytes / 1e6);
    if (common.json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object()
            .field("base_ppl", r.ppl)
            .field("positions", static_cast<int64_t>(r.n_scored))
            .field("chunks", r.n_chunks)
            .field("n_ctx", p.n_ctx)
            .field("file", out)
            .field("bytes", bytes)
            .end_object();
        std::cout << "\n";
    }
    return 0;
}

// What `gguf-verify MODEL` was asked for, parsed and checked.
struct VerifyOptions {
    appcommon::CommonOptions common;
    std::string recipe, manifest, write_manifest, baseline, base, text, generate, write_gen, junit;
    int chunks = -1, gen_tokens = 32;
    double max_abs = 1e4;
    verify::QualityThresholds th;
    std::set<std::string> wanted;  // the checks to run
    runtime::ModelOptions model_options;
    runtime::ContextParams ctx_params;

    bool wants(const std::string& check) const { return wanted.count(check) > 0; }
};

// The options' combinations that make no sense, refused before any work; then which checks run.
void check_verify_options(VerifyOptions& o, const std::string& checks_opt, const std::string& skip_opt) {
    if (o.common.model.empty()) throw appcommon::UsageError{"no model given"};
    const verify::QualityThresholds& th = o.th;
    const bool thresholds = th.max_kld || th.max_kld_p99 || th.min_same_top_percent || th.max_ppl_ratio;
    if (!o.baseline.empty() && !o.base.empty()) throw appcommon::UsageError{"--baseline and --base exclude each other"};
    if (!o.base.empty() && o.text.empty()) throw appcommon::UsageError{"--base needs the text to evaluate (-f TEXT)"};
    if (thresholds && o.baseline.empty() && o.base.empty()) {
        throw appcommon::UsageError{"quality thresholds need --baseline FILE or --base MODEL"};
    }
    if (!o.manifest.empty() && !o.write_manifest.empty()) {
        throw appcommon::UsageError{"--manifest and --write-manifest exclude each other"};
    }
    if (!o.write_gen.empty() && o.generate.empty()) {
        throw appcommon::UsageError{"--write-generations needs --generate PROMPTS"};
    }
    if (o.gen_tokens < 1) throw appcommon::UsageError{"--gen-tokens must be at least 1"};
    if (!(o.max_abs > 0)) throw appcommon::UsageError{"--max-abs must be > 0"};
    if (!o.recipe.empty() && !quant::find_recipe(o.recipe)) {
        throw appcommon::UsageError{"--recipe: unknown recipe '" + o.recipe + "'"};
    }
    o.wanted = std::set<std::string>(kChecks.begin(), kChecks.end());
    if (!checks_opt.empty()) o.wanted = check_list(checks_opt, "--checks");
    for (const auto& s : check_list(skip_opt, "--skip")) o.wanted.erase(s);
    // a gate that checks nothing would pass anything
    if (o.wanted.empty()) throw appcommon::UsageError{"--checks and --skip leave no check to run"};
}

// Parses and checks `args`; false when they only asked for help. The outputs are checked before any
// work: never one of the inputs; an existing one replaced only with --force, except the JUnit report,
// which a CI job rewrites on every run.
bool parse_verify_options(const std::vector<std::string>& args, VerifyOptions& o) {
    std::string checks_opt, skip_opt;
    bool force = false;
    verify::QualityThresholds& th = o.th;
    appcommon::OptionSet opts("gguf-verify", kUsage);
    o.common.add_to(opts, 512);
    opts.section("Checks");
    opts.value({"--checks"}, "LIST", "only these checks (comma-separated)", &checks_opt);
    opts.value({"--skip"}, "LIST", "leave out these checks (comma-separated)", &skip_opt);
    opts.value({"--max-abs"}, "X", "scan: largest |weight| allowed (default 1e4)", to_double(o.max_abs, 0, DBL_MAX));
    opts.value({"--recipe"}, "NAME", "recipe: check against this recipe (default: general.file_type's)", &o.recipe);
    opts.value({"--manifest"}, "FILE", "check the file against this manifest", &o.manifest);
    opts.value({"--write-manifest"}, "FILE", "write the file's manifest (XXH3-64 per tensor)", &o.write_manifest);
    opts.value({"--baseline"}, "FILE", "quality: compact baseline made by 'gguf-verify baseline'", &o.baseline);
    opts.value({"--base"}, "MODEL", "quality: base model evaluated on the fly (needs -f)", &o.base);
    opts.value({"-f", "--file"}, "FILE", "quality with --base: the text to evaluate", &o.text);
    opts.value({"--chunks"}, "N", "quality with --base: chunks of -c tokens (-1: all)",
               [&](const std::string& v) { o.chunks = appcommon::parse_int(v, -1, INT_MAX); });
    opts.value({"--max-kld"}, "X", "quality: largest mean KLD allowed", to_optional(th.max_kld, 0, DBL_MAX));
    opts.value({"--max-kld-p99"}, "X", "quality: largest 99th-percentile KLD allowed", to_optional(th.max_kld_p99, 0, DBL_MAX));
    opts.value({"--min-same-top"}, "PCT", "quality: smallest same-top % allowed", to_optional(th.min_same_top_percent, 0, 100));
    opts.value({"--max-ppl-ratio"}, "X", "quality: largest PPL / base PPL allowed", to_optional(th.max_ppl_ratio, 0, DBL_MAX));
    opts.value({"--generate"}, "FILE", "generation: file of PROMPT<TAB>EXPECTED lines", &o.generate);
    opts.value({"--write-generations"}, "FILE", "generation: write the greedy continuations here", &o.write_gen);
    opts.value({"--gen-tokens"}, "N", "generation: tokens written per prompt (default 32)",
               [&](const std::string& v) { o.gen_tokens = appcommon::parse_int(v, 1, INT_MAX); });
    opts.value({"--junit"}, "FILE", "write a JUnit XML report here (replaced when it exists)", &o.junit);
    opts.flag({"--force"}, "replace an existing --write-manifest or --write-generations file", &force);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return false;
    take_model(opts, o.common);
    check_verify_options(o, checks_opt, skip_opt);
    o.model_options = appcommon::model_options(o.common);
    o.ctx_params = appcommon::context_params(o.common);
    const std::vector<std::string> inputs{o.common.model, o.manifest, o.baseline, o.base, o.text, o.generate};
    check_outputs({o.write_manifest, o.write_gen}, inputs, force);
    check_outputs({o.junit}, inputs, true);
    return true;
}

// Runs the checks asked for on one file, in kChecks' order; each that does not run is listed as
// skipped with the reason.
class Verifier {
public:
    explicit Verifier(const VerifyOptions& o) : o_(o) {}

    std::vector<CheckResult> run() {
        const std::optional<gguf::File> file = open_file();
        if (!file) return std::move(results_);
        if (o_.wants("structure")) results_.push_back(verify::structure_check(*file));
        else skip("structure", "not asked for");
        check_model();
        check_scan(*file);
        if (o_.wants("recipe")) {
            results_.push_back(guarded("recipe", [&] { return verify::recipe_check(*file, o_.recipe); }));
        } else {
            skip("recipe", "not asked for");
        }
        check_manifest(*file);
        check_quality();
        check_generation();
        return std::move(results_);
    }

private:
    void skip(const std::string& name, const std::string& why) { results_.push_back(CheckResult::skipped(name, why)); }
    bool have_model() const { return loaded_.model && loaded_.tokenizer; }

    // A file the reader rejects: one clear error, and nothing else can be checked.
    std::optional<gguf::File> open_file() {
        try {
            return gguf::File::open(o_.common.model);
        } catch (const gguf::Error& e) {
            CheckResult r;
            r.name = "structure";
            r.status = verify::Status::Failed;
            r.figure = "not a valid GGUF file";
            r.problems.push_back(e.what());
            results_.push_back(r);
            for (size_t i = 1; i < kChecks.size(); ++i) skip(kChecks[i], "the file is not a valid GGUF");
            return std::nullopt;
        }
    }

    // The model is loaded when a check needs it, and its failure reported even when not asked for.
    void check_model() {
        const bool needs_model = o_.wants("model") ||
                                 (o_.wants("quality") && (!o_.baseline.empty() || !o_.base.empty())) ||
                                 (o_.wants("generation") && !o_.generate.empty());
        if (!needs_model) return skip("model", "not asked for");
        CheckResult m = guarded("model", [&] { return verify::model_check(o_.common.model, o_.model_options, loaded_); });
        if (o_.wants("model")) results_.push_back(m);
        else if (!have_model()) results_.push_back(m);  // the other checks need it
        else skip("model", "not asked for");
    }

    void check_scan(const gguf::File& f) {
        if (!o_.wants("scan")) return skip("scan", "not asked for");
        verify::ScanOptions so;
        so.max_abs = o_.max_abs;
        so.threads = o_.common.threads;
        if (appcommon::stderr_is_terminal()) so.progress = byte_progress;
        results_.push_back(guarded("scan", [&] { return verify::scan_check(f, so); }));
        if (so.progress) std::fprintf(stderr, "\r\033[K");
    }

    void check_manifest(const gguf::File& f) {
        const int threads = o_.common.threads;
        if (!o_.wants("manifest")) {
            skip("manifest", "not asked for");
        } else if (!o_.write_manifest.empty()) {
            results_.push_back(guarded("manifest", [&] {
                const auto m = verify::make_manifest(f, threads);
                verify::write_manifest(m, o_.write_manifest);
                return CheckResult::skipped("manifest", "wrote " + std::to_string(m.tensors.size()) +
                                                            " tensor hashes and the metadata hash to " + o_.write_manifest);
            }));
        } else if (!o_.manifest.empty()) {
            results_.push_back(guarded("manifest", [&] { return verify::manifest_check(f, o_.manifest, threads); }));
        } else {
            skip("manifest", "no --manifest given");
        }
    }

    // One context shared by quality and generation, made again only when a check needs a longer one.
    runtime::Context& context(int n_ctx) {
        if (!ctx_ || ctx_->n_ctx() < n_ctx) {
            runtime::ContextParams p = o_.ctx_params;
            p.n_ctx = n_ctx;
            ctx_.reset();
            ctx_ = std::make_unique<runtime::Context>(*loaded_.model, p);
        }
        return *ctx_;
    }

    void check_quality() {
        if (!o_.wants("quality")) return skip("quality", "not asked for");
        if (o_.baseline.empty() && o_.base.empty()) return skip("quality", "no --baseline or --base given");
        if (!have_model()) return skip("quality", "the model does not load");
        results_.push_back(guarded("quality", [&] {
            if (!o_.baseline.empty()) {
                const auto info = runtime::read_compact_baseline_info(o_.baseline);
                auto q = runtime::compare_compact_baseline(context(static_cast<int>(info.n_ctx)), o_.baseline,
                                                           chunk_progress);
                return verify::quality_check(q, o_.th);
            }
            auto base_model = runtime::Model::load(o_.base, o_.model_options);
            runtime::ContextParams bp = o_.ctx_params;
            runtime::Context base_ctx(*base_model, bp);
            runtime::Context& test_ctx = context(base_ctx.n_ctx());
            const auto tokens = loaded_.tokenizer->encode(appcommon::read_file(o_.text), true, false);
            const auto p = runtime::perplexity_params(*loaded_.tokenizer, base_ctx.n_ctx(), o_.chunks, chunk_progress);
            return verify::quality_check(runtime::compare_models(base_ctx, test_ctx, tokens, p), o_.th);
        }));
    }

    void check_generation() {
        if (!o_.wants("generation")) return skip("generation", "not asked for");
        if (o_.generate.empty()) return skip("generation", "no --generate given");
        if (!have_model()) return skip("generation", "the model does not load");
        results_.push_back(guarded("generation", [&] {
            const int n_ctx = o_.ctx_params.n_ctx > 0 ? o_.ctx_params.n_ctx : 512;
            return verify::generation_check(context(n_ctx), *loaded_.tokenizer, o_.generate, o_.write_gen, o_.gen_tokens);
        }));
    }

    const VerifyOptions& o_;
    std::vector<CheckResult> results_;
    verify::LoadedModel loaded_;
    std::unique_ptr<runtime::Context> ctx_;  // after loaded_: destroyed before the model it reads
};

int run_verify(const std::vector<std::string>& args) {
    VerifyOptions o;
    if (!parse_verify_options(args, o)) return 0;
    const std::vector<CheckResult> results = Verifier(o).run();
    verify::write_summary(std::cerr, o.common.model, results);
    if (o.common.json) verify::write_json(std::cout, o.common.model, results);
    if (!o.junit.empty()) {
        std::ostringstream out;
        verify::write_junit(out, o.common.model, results);
        gguf::write_file(o.junit, out.str());
    }
    return verify::any_failed(results) ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        if (argc == 1) {
            std::fprintf(stderr, "%s\n", kUsage);
            return 2;
        }
        const bool baseline = std::string(argv[1]) == "baseline";
        const std::vector<std::string> args(argv + (baseline ? 2 : 1), argv + argc);
        return baseline ? run_baseline(args) : run_verify(args);
    });
}
