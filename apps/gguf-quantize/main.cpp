// gguf-quantize: quantizes a GGUF model with a llama.cpp recipe, optionally guided by an
// importance matrix and per-tensor overrides. Options in, libquant calls out.
#include <omp.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/validate.h"
#include "gguf/output_file.h"
#include "quant/imatrix.h"
#include "quant/recipe.h"
#include "report.h"
#include "targets.h"

namespace po = boost::program_options;

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

bool is_count(const std::string& s) {
    return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string recipe_list() {
    std::string s = "Recipes:\n";
    for (const auto& r : quant::recipes()) {
        s += "  " + std::string(r.name) + std::string(r.name.size() < 10 ? 10 - r.name.size() : 1, ' ') +
             std::string(r.description) + "\n";
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        po::options_description visible(
            "Usage: gguf-quantize [options] IN.gguf OUT.gguf RECIPE [THREADS]\n"
            "       gguf-quantize --dry-run [options] IN.gguf [OUT.gguf] RECIPE\n\n"
            "Quantizes IN.gguf into OUT.gguf (written to a temp file, renamed when complete) choosing each\n"
            "tensor's type as llama-quantize does for RECIPE. THREADS sets the worker threads.\n\nOptions");
        std::string imatrix_path, token_type, output_type;
        std::vector<std::string> overrides;
        TargetOptions target;
        target.cache_dir = default_cache_dir();
        std::string candidates = "q2_K,q3_K,q4_K,iq4_xs,q5_K,q6_K,q8_0";
        double verify_max = -1;
        std::string verify_text;
        int verify_chunks = 64;
        po::options_description targets("Choosing types from measured sensitivity (docs/quantize.md)");
        targets.add_options()
            ("target-bpw", po::value<double>(), "per-tensor types for this many bits per weight (whole file)")
            ("target-size", po::value<std::string>(), "per-tensor types for a file of this size (bytes; K/M/G, kB/MB/GB)")
            ("max-kld", po::value<double>(), "the smallest file whose predicted mean KL divergence is at most this")
            ("calibration", po::value<std::string>(&target.calibration), "text the sensitivities are measured on")
            ("calibration-chunks", po::value<int>(&target.calibration_chunks)->default_value(8),
             "chunks of -c tokens per measurement")
            ("ctx-size,c", po::value<int>(&target.ctx)->default_value(256), "tokens per calibration chunk")
            ("candidate-types", po::value<std::string>(&candidates)->default_value(candidates), "types to choose among")
            ("cache-dir", po::value<std::string>(&target.cache_dir), "calibration cache (default ~/.cache/gguf-suite)")
            ("no-cache", "measure again and keep nothing")
            ("verify-kld", po::value<double>(&verify_max),
             "after writing: mean KLD against IN.gguf on --verify-text must be at most this, else the output is removed (exit 1)")
            ("verify-text", po::value<std::string>(&verify_text), "held-out text for --verify-kld")
            ("verify-chunks", po::value<int>(&verify_chunks)->default_value(64), "chunks of -c tokens --verify-kld evaluates");
        visible.add_options()
            ("help,h", "show this help and the recipes")
            ("imatrix", po::value<std::string>(&imatrix_path), "importance matrix (llama-imatrix GGUF or legacy .dat)")
            ("tensor-type", po::value<std::vector<std::string>>(&overrides)->composing(),
             "REGEX=TYPE: tensors whose name REGEX finds get TYPE (repeatable, first match wins)")
            ("token-embedding-type", po::value<std::string>(&token_type), "type of token_embd.weight")
            ("output-tensor-type", po::value<std::string>(&output_type), "type of output.weight")
            ("pure", "the recipe's base type for every tensor it touches: no mixture rules")
            ("dry-run", "print the plan (per tensor: old -> new type, size, bits per weight) and write nothing")
            ("force", "replace OUT.gguf if it exists (never the input or the imatrix)")
            ("allow-foreign-imatrix", "use an imatrix with entries that name no tensor of this model")
            ("json", "machine-readable output on stdout");
        visible.add(targets);
        po::variables_map vm;
        std::vector<std::string> args = appcommon::parse_command_line(argc, argv, visible, vm);
        if (vm.count("target-bpw")) target.target_bpw = vm["target-bpw"].as<double>();
        if (vm.count("target-size")) target.target_size = vm["target-size"].as<std::string>();
        if (vm.count("max-kld")) target.max_kld = vm["max-kld"].as<double>();
        if ((target.target_bpw ? 1 : 0) + (target.target_size ? 1 : 0) + (target.max_kld ? 1 : 0) > 1) {
            throw appcommon::UsageError{"give one of --target-bpw, --target-size, --max-kld"};
        }
        if (target.target_bpw && !(*target.target_bpw > 0 && *target.target_bpw <= 32)) {
            throw appcommon::UsageError{"--target-bpw must be between 0 and 32"};
        }
        if (target.max_kld && !(*target.max_kld > 0)) throw appcommon::UsageError{"--max-kld must be positive"};
        if (target.calibration_chunks < 1) throw appcommon::UsageError{"--calibration-chunks must be at least 1"};
        if (target.ctx < 4) throw appcommon::UsageError{"-c must be at least 4"};
        if (verify_chunks < 1) throw appcommon::UsageError{"--verify-chunks must be at least 1"};
        if (vm.count("verify-kld") && (verify_text.empty() || !(verify_max > 0))) {
            throw appcommon::UsageError{"--verify-kld needs a positive maximum and --verify-text FILE"};
        }
        if (vm.count("no-cache")) target.cache_dir.clear();
        for (size_t pos = 0; pos <= candidates.size();) {
            const size_t comma = std::min(candidates.find(',', pos), candidates.size());
            if (comma > pos) target.candidates.push_back(candidates.substr(pos, comma - pos));
            pos = comma + 1;
        }
        if (vm.count("help")) {
            std::cout << visible << "\n" << recipe_list();
            return 0;
        }

        const bool dry_run = vm.count("dry-run") > 0, json = vm.count("json") > 0;
        int threads = 0;
        if (args.size() >= 3 && is_count(args.back())) {
            threads = appcommon::check_threads(std::stoll(args.back()), "THREADS");
            args.pop_back();
        }
        RunInfo run;
        run.dry_run = dry_run;
        std::string recipe_name;
        if (args.size() == 3) {
            run.input = args[0];
            run.output = args[1];
            recipe_name = args[2];
        } else if (args.size() == 2 && dry_run) {
            run.input = args[0];
            recipe_name = args[1];
        } else {
            throw appcommon::UsageError{dry_run ? "expected IN.gguf [OUT.gguf] RECIPE"
                                                : "expected IN.gguf OUT.gguf RECIPE"};
        }

        quant::PlanInputs inputs;
        inputs.recipe = quant::find_recipe(recipe_name);
        if (!inputs.recipe) throw std::runtime_error("unknown recipe '" + recipe_name + "' (see --help for the list)");
        inputs.dry_run = dry_run;
        inputs.options.pure = vm.count("pure") > 0;
        if (!token_type.empty()) inputs.options.token_embedding_type = parse_type(token_type, "--token-embedding-type");
        if (!output_type.empty()) inputs.options.output_tensor_type = parse_type(output_type, "--output-tensor-type");
        for (const auto& o : overrides) inputs.options.overrides.push_back(parse_override(o));
        inputs.allow_foreign_imatrix = vm.count("allow-foreign-imatrix") > 0;
        if (threads > 0) omp_set_num_threads(threads);

        // the output is checked before any work: a directory or an existing file fails now, not
        // after the whole model has been quantized
        gguf::OutputPolicy policy;
        policy.replace_existing = vm.count("force") > 0;
        policy.inputs = {run.input};
        if (!imatrix_path.empty()) policy.inputs.push_back(imatrix_path);
        if (!dry_run) gguf::check_output_path(*run.output, policy);

        const gguf::File in = gguf::File::open(run.input);
        std::optional<quant::Imatrix> imatrix;
        if (!imatrix_path.empty()) {
            imatrix = quant::Imatrix::load(imatrix_path);
            inputs.imatrix = &*imatrix;
            run.imatrix = &*imatrix;
        }
        std::optional<TargetOutcome> chosen;
        if (target.active()) {
            chosen = choose_target_types(run.input, inputs, imatrix, target, threads);
            run.imatrix = inputs.imatrix;
            std::cerr << chosen->notes;
            run.predicted_kld = &chosen->predicted_kld;
            run.predicted_total = chosen->predicted_total;
        }
        const quant::QuantPlan plan = quant::make_plan(in, inputs);
        for (const auto& w : plan.warnings) std::cerr << "warning: " << w << "\n";

        if (!dry_run) {
            appcommon::Progress progress(plan.tensors.size());
            quant::write_quantized(in, plan, inputs.imatrix, *run.output, [&](size_t i, const quant::QuantPlan& p) {
                progress.step(tensor_label(p.tensors[i]));
            }, policy);
            progress.done();
            if (verify_max > 0) {
                const double kld = verify_kld(run.input, *run.output, verify_text, target.ctx, verify_chunks, threads);
                if (kld > verify_max) {
                    std::filesystem::remove(*run.output);
                    throw std::runtime_error(*run.output + ": mean KLD " + std::to_string(kld) + " on " + verify_text +
                                             " exceeds --verify-kld " + std::to_string(verify_max) + "; output removed");
                }
                std::cerr << "verified: mean KLD " << kld << " on " << verify_text << " (at most " << verify_max << ")\n";
            }
        }
        if (json) print_json(std::cout, plan, run);
        else if (dry_run) print_plan_text(std::cout, plan, run);
        else print_summary_text(std::cout, plan, run);
        return 0;
    });
}
