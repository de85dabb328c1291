// gguf-quantize: quantizes a GGUF model with a llama.cpp recipe, optionally guided by an
// importance matrix and per-tensor overrides. Options in, libquant calls out.
#include <omp.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/options.h"
#include "appcommon/text.h"
#include "appcommon/validate.h"
#include "gguf/output_file.h"
#include "gguf/split.h"
#include "quant/imatrix.h"
#include "quant/recipe.h"
#include "output_name.h"
#include "report.h"
#include "targets.h"

namespace {

// An unknown type name is bad input (exit 1), like an unknown recipe.
gguf::GgmlType parse_type(const std::string& name, const char* option) {
    const auto t = gguf::type_from_name(name);
    if (!t) throw std::runtime_error(std::string(option) + ": unknown tensor type '" + name + "'");
    return *t;
}

// REGEX=TYPE, split at the last '=' since a type name never holds one but a regex may.
quant::TensorTypeOverride parse_override(const std::string& arg) {
    const size_t eq = arg.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
        throw appcommon::UsageError{"--tensor-type expects REGEX=TYPE, got '" + arg + "'"};
    }
    return {arg.substr(0, eq), parse_type(arg.substr(eq + 1), "--tensor-type")};
}

// A recipe by name (any case) or by llama.cpp's file-type number ("15" is Q4_K_M), as llama-quantize
// takes it.
const quant::Recipe* resolve_recipe(const std::string& arg) {
    if (const quant::Recipe* r = quant::find_recipe(arg)) return r;
    if (arg.empty() || arg.size() > 4 || arg.find_first_not_of("0123456789") != std::string::npos) return nullptr;
    return quant::recipe_for_file_type(static_cast<uint32_t>(std::stoul(arg)));
}

std::string recipe_list() {
    std::string s = "Recipes (llama.cpp's file-type number first):\n";
    for (const auto& r : quant::recipes()) {
        // the number selects the recipe that owns it: Q4_K_L and the aliases share theirs
        const bool owns = quant::recipe_for_file_type(static_cast<uint32_t>(r.file_type)) == &r;
        char num[8];
        std::snprintf(num, sizeof num, owns ? "%3u" : "   ", static_cast<unsigned>(r.file_type));
        s += std::string("  ") + num + "  " + std::string(r.name) +
             std::string(r.name.size() < 10 ? 10 - r.name.size() : 1, ' ') + std::string(r.description) + "\n";
    }
    return s;
}

// Everything the command line says.
struct Options {
    std::vector<std::string> args;  // positional: IN [OUT] RECIPE [THREADS]
    std::string imatrix_path, token_type, output_type;
    std::vector<std::string> overrides;
    bool pure = false, dry_run = false, json = false, force = false, allow_foreign_imatrix = false,
         allow_requantize = false, keep_split = false;
    uint64_t split_max_size = 0;
    TargetOptions target;
    double verify_max = -1;  // --verify-kld; <= 0: no gate
    std::string verify_text;
    int verify_chunks = 64;
};

void add_recipe_options(appcommon::OptionSet& opts, Options& o) {
    opts.value({"--imatrix"}, "FILE", "importance matrix (llama-imatrix GGUF or legacy .dat)", &o.imatrix_path);
    opts.value({"--tensor-type"}, "REGEX=TYPE", "tensors whose name REGEX finds get TYPE (repeatable, first match wins)",
               &o.overrides);
    opts.value({"--token-embedding-type"}, "TYPE", "type of token_embd.weight", &o.token_type);
    opts.value({"--output-tensor-type"}, "TYPE", "type of output.weight", &o.output_type);
    opts.flag({"--pure"}, "the recipe's base type for every tensor it touches: no mixture rules", &o.pure);
    opts.flag({"--dry-run"}, "print the plan (per tensor: old -> new type, size, bits per weight), write nothing",
              &o.dry_run);
    opts.flag({"--json"}, "machine-readable output on stdout", &o.json);
    opts.unsupported({"--leave-output-tensor"}, false,
                     "not supported yet; --output-tensor-type f16 (or the input's type) keeps output.weight precise");
    opts.unsupported({"--include-weights", "--exclude-weights"}, true,
                     "not supported yet: the importance matrix applies to every tensor it has data for");
    opts.unsupported({"--tensor-type-file"}, true, "not supported yet; repeat --tensor-type REGEX=TYPE");
    opts.unsupported({"--prune-layers"}, true, "not supported yet");
    opts.unsupported({"--override-kv"}, true, "not supported yet");
    opts.flag({"--force"}, "replace OUT.gguf if it exists (never the input or the imatrix)", &o.force);
    opts.flag({"--allow-foreign-imatrix"}, "use an imatrix with entries that name no tensor of this model",
              &o.allow_foreign_imatrix);
    opts.flag({"--allow-requantize"},
              "quantize tensors that are already quantized (warns: quality is below a quant of the f16 model)",
              &o.allow_requantize);
    opts.flag({"--keep-split"}, "cut the output into as many shards as the (split) input, the same tensors in each",
              &o.keep_split);
    opts.value({"--split-max-size"}, "N(M|G)",
               "cut the output into shards of at most this much tensor data (M = 10^6, G = 10^9 bytes)",
               [&o](const std::string& v) { o.split_max_size = appcommon::parse_split_size(v); });
}

void add_target_options(appcommon::OptionSet& opts, Options& o, std::string& candidates, bool& no_cache) {
    TargetOptions& target = o.target;
    opts.section("Choosing types from measured sensitivity (docs/quantize.md)");
    opts.value({"--target-bpw"}, "X", "per-tensor types for this many bits per weight (whole file)",
               [&target](const std::string& v) { target.target_bpw = appcommon::parse_double(v, 1e-9, 32); });
    opts.value({"--target-size"}, "SIZE", "per-tensor types for a file of this size (bytes; K/M/G, kB/MB/GB)",
               [&target](const std::string& v) { target.target_size = v; });
    opts.value({"--max-kld"}, "X", "the smallest file whose predicted mean KL divergence is at most this",
               [&target](const std::string& v) { target.max_kld = appcommon::parse_double(v, 1e-12, 1e9); });
    opts.value({"--calibration"}, "FILE", "text the sensitivities are measured on", &target.calibration);
    opts.value({"--calibration-chunks"}, "N", "chunks of -c tokens per measurement (default 8)",
               [&target](const std::string& v) { target.calibration_chunks = appcommon::parse_int(v, 1, 1 << 20); });
    opts.value({"-c", "--ctx-size"}, "N", "tokens per calibration chunk (default 256)",
               [&target](const std::string& v) { target.ctx = appcommon::parse_int(v, 4, 1 << 24); });
    opts.value({"--candidate-types"}, "LIST", "types to choose among (default " + candidates + ")", &candidates);
    opts.value({"--cache-dir"}, "DIR", "calibration cache (default ~/.cache/gguf-suite)", &target.cache_dir);
    opts.flag({"--no-cache"}, "measure again and keep nothing", &no_cache);
    opts.value({"--verify-kld"}, "MAX",
               "after writing: mean KLD against IN.gguf on --verify-text must be at most this, else the output is "
               "removed (exit 1)",
               [&o](const std::string& v) { o.verify_max = appcommon::parse_double(v, 1e-12, 1e9); });
    opts.value({"--verify-text"}, "FILE", "held-out text for --verify-kld", &o.verify_text);
    opts.value({"--verify-chunks"}, "N", "chunks of -c tokens --verify-kld evaluates (default 64)",
               [&o](const std::string& v) { o.verify_chunks = appcommon::parse_int(v, 1, 1 << 20); });
}

// The command line into `o`; false when it asked for --help (already printed).
bool parse_command_line(int argc, char** argv, Options& o) {
    appcommon::OptionSet opts(
        "gguf-quantize",
        "Usage: gguf-quantize [options] IN.gguf [OUT.gguf] RECIPE [THREADS]\n"
        "       gguf-quantize --dry-run [options] IN.gguf [OUT.gguf] RECIPE\n\n"
        "Quantizes IN.gguf into OUT.gguf (written to a temp file, renamed when complete) choosing each\n"
        "tensor's type as llama-quantize does for RECIPE: a name (any case) or llama.cpp's file-type\n"
        "number (15 = Q4_K_M). Without OUT.gguf the output is IN's name with the recipe's in place of\n"
        "its float type (model-bf16.gguf -> model-Q4_K_M.gguf). THREADS sets the worker threads.\n\n" +
            recipe_list());
    add_recipe_options(opts, o);
    o.target.cache_dir = default_cache_dir();
    std::string candidates = "q2_K,q3_K,q4_K,iq4_xs,q5_K,q6_K,q8_0";
    bool no_cache = false;
    add_target_options(opts, o, candidates, no_cache);
    if (opts.parse(argc, argv) == appcommon::OptionSet::Outcome::Exit) return false;
    o.args = opts.positional();
    const TargetOptions& t = o.target;
    if ((t.target_bpw ? 1 : 0) + (t.target_size ? 1 : 0) + (t.max_kld ? 1 : 0) > 1) {
        throw appcommon::UsageError{"give one of --target-bpw, --target-size, --max-kld"};
    }
    if (o.verify_max > 0 && o.verify_text.empty()) throw appcommon::UsageError{"--verify-kld needs --verify-text FILE"};
    if (no_cache) o.target.cache_dir.clear();
    for (size_t pos = 0; pos <= candidates.size();) {
        const size_t comma = std::min(candidates.find(',', pos), candidates.size());
        if (comma > pos) o.target.candidates.push_back(candidates.substr(pos, comma - pos));
        pos = comma + 1;
    }
    return true;
}

// llama-quantize's positional forms: IN RECIPE [THREADS] (output named after the input) and
// IN OUT RECIPE [THREADS]; the second argument is the recipe when it names one. Fills run's input and
// output; returns the recipe and sets `threads` (0: the default).
const quant::Recipe* resolve_positionals(const std::vector<std::string>& args, RunInfo& run, int& threads) {
    const quant::Recipe* recipe = nullptr;
    std::string threads_arg;
    if (args.size() >= 2 && (recipe = resolve_recipe(args[1]))) {
        if (args.size() > 3) throw appcommon::UsageError{"expected IN.gguf RECIPE [THREADS]"};
        run.input = args[0];
        if (!run.dry_run) run.output = default_output(args[0], *recipe);
        if (args.size() == 3) threads_arg = args[2];
    } else if (args.size() == 3 || args.size() == 4) {
        run.input = args[0];
        run.output = args[1];
        recipe = resolve_recipe(args[2]);
        if (!recipe) throw std::runtime_error("unknown recipe '" + args[2] + "' (a name or llama.cpp's number; see --help)");
        if (args.size() == 4) threads_arg = args[3];
    } else {
        throw appcommon::UsageError{args.size() == 2 ? "expected IN.gguf [OUT.gguf] RECIPE: '" + args[1] + "' is no recipe"
                                                     : "expected IN.gguf [OUT.gguf] RECIPE [THREADS]"};
    }
    threads = 0;
    if (!threads_arg.empty()) {
        try {
            threads = appcommon::check_threads(appcommon::parse_int64(threads_arg, LLONG_MIN, LLONG_MAX), "THREADS");
        } catch (const appcommon::BadValue& e) {
            throw appcommon::UsageError{"THREADS: " + e.why};
        }
    }
    return recipe;
}

quant::PlanInputs plan_inputs(const Options& o, const quant::Recipe* recipe) {
    quant::PlanInputs inputs;
    inputs.recipe = recipe;
    inputs.dry_run = o.dry_run;
    inputs.allow_requantize = o.allow_requantize;
    inputs.options.pure = o.pure;
    if (!o.token_type.empty()) inputs.options.token_embedding_type = parse_type(o.token_type, "--token-embedding-type");
    if (!o.output_type.empty()) inputs.options.output_tensor_type = parse_type(o.output_type, "--output-tensor-type");
    for (const auto& ov : o.overrides) inputs.options.overrides.push_back(parse_override(ov));
    inputs.allow_foreign_imatrix = o.allow_foreign_imatrix;
    return inputs;
}

// Where the output goes. A split output is written whole first, then cut (llama.cpp's shards need the
// tensor count of every shard up front); the whole file is a temp file of ours, removed afterwards.
// The shards' names are known only once cut: write_shards checks them all with `policy` first.
struct OutputTarget {
    gguf::OutputPolicy policy, whole_policy;
    bool split = false;
    std::string prefix, whole;
    const std::string& first_file(const RunInfo& run) const { return split ? whole : *run.output; }
    const gguf::OutputPolicy& first_policy() const { return split ? whole_policy : policy; }
};

OutputTarget output_target(const Options& o, const RunInfo& run) {
    OutputTarget t;
    t.policy.replace_existing = o.force;
    t.policy.inputs = {run.input};
    if (!o.imatrix_path.empty()) t.policy.inputs.push_back(o.imatrix_path);
    if (o.keep_split && o.split_max_size > 0) throw appcommon::UsageError{"give --keep-split or --split-max-size, not both"};
    t.split = o.keep_split || o.split_max_size > 0;
    t.prefix = run.output ? *run.output : std::string();
    if (t.prefix.ends_with(".gguf")) t.prefix.resize(t.prefix.size() - 5);
    if (t.split) t.whole = t.prefix + ".whole.tmp.gguf";
    t.whole_policy = t.policy;
    t.whole_policy.replace_existing = true;
    return t;
}

void write_output(const gguf::File& in, const quant::QuantPlan& plan, const quant::PlanInputs& inputs, const Options& o,
                  const OutputTarget& target, RunInfo& run) {
    const auto t0 = std::chrono::steady_clock::now();
    appcommon::Progress progress(plan.tensors.size());
    try {
        quant::write_quantized(
            in, plan, inputs.imatrix, target.first_file(run),
            [&](size_t i, const quant::QuantPlan& p) { progress.step(tensor_label(p.tensors[i])); }, target.first_policy());
        progress.done();
        if (target.split) {
            const gguf::File out = gguf::File::open_single(target.whole);
            std::vector<uint32_t> shard_of;
            for (const auto& t : out.tensors()) shard_of.push_back(o.keep_split ? in.tensor(t.name).shard : 0);
            run.shards = o.keep_split ? gguf::write_shards(out, target.prefix, shard_of, {}, target.policy)
                                      : gguf::write_split(out, target.prefix, gguf::SplitLimits{o.split_max_size, 0}, {},
                                                          target.policy);
            std::filesystem::remove(target.whole);
        }
    } catch (...) {
        progress.done();
        if (target.split) std::filesystem::remove(target.whole);
        throw;
    }
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --verify-kld: the finished file against the source on held-out text; a failure removes it.
void verify_gate(const Options& o, const RunInfo& run, int threads) {
    const double kld = verify_kld(run.input, *run.output, o.verify_text, o.target.ctx, o.verify_chunks, threads);
    if (kld > o.verify_max) {
        std::filesystem::remove(*run.output);
        throw std::runtime_error(*run.output + ": mean KLD " + std::to_string(kld) + " on " + o.verify_text +
                                 " exceeds --verify-kld " + std::to_string(o.verify_max) + "; output removed");
    }
    std::cerr << "verified: mean KLD " << kld << " on " << o.verify_text << " (at most " << o.verify_max << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        Options o;
        if (!parse_command_line(argc, argv, o)) return 0;
        RunInfo run;
        run.dry_run = o.dry_run;
        int threads = 0;
        const quant::Recipe* recipe = resolve_positionals(o.args, run, threads);
        quant::PlanInputs inputs = plan_inputs(o, recipe);
        if (threads > 0) omp_set_num_threads(threads);

        // the output is checked before any work: a directory or an existing file fails now, not
        // after the whole model has been quantized
        const OutputTarget target = output_target(o, run);
        if (!o.dry_run) gguf::check_output_path(target.first_file(run), target.first_policy());

        const gguf::File in = gguf::File::open(run.input);
        std::optional<quant::Imatrix> imatrix;
        if (!o.imatrix_path.empty()) {
            imatrix = quant::Imatrix::load(o.imatrix_path);
            inputs.imatrix = &*imatrix;
            run.imatrix = &*imatrix;
        }
        std::optional<TargetOutcome> chosen;
        if (o.target.active()) {
            chosen = choose_target_types(run.input, inputs, imatrix, o.target, threads);
            run.imatrix = inputs.imatrix;
            std::cerr << chosen->notes;
            run.predicted_kld = &chosen->predicted_kld;
            run.predicted_total = chosen->predicted_total;
        }
        const quant::QuantPlan plan = quant::make_plan(in, inputs);
        for (const auto& w : plan.warnings) std::cerr << "warning: " << w << "\n";

        if (o.keep_split && in.n_shards() == 1) throw appcommon::UsageError{"--keep-split: " + run.input + " is not split"};
        if (!o.dry_run) {
            write_output(in, plan, inputs, o, target, run);
            if (o.verify_max > 0) verify_gate(o, run, threads);
        }
        if (o.json) print_json(std::cout, plan, run);
        else if (o.dry_run) print_plan_text(std::cout, plan, run);
        else print_summary_text(std::cout, plan, run);
        return 0;
    });
}
