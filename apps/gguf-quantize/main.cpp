// gguf-quantize: quantizes a GGUF model with a llama.cpp recipe, optionally guided by an
// importance matrix and per-tensor overrides. Options in, libquant calls out.
#include <omp.h>

#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/options.h"
#include "quant/imatrix.h"
#include "quant/recipe.h"
#include "report.h"

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
    return !s.empty() && s.size() < 6 && s.find_first_not_of("0123456789") == std::string::npos;
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
        std::string imatrix_path, token_type, output_type;
        std::vector<std::string> overrides;
        bool pure = false, dry_run = false, json = false;
        appcommon::OptionSet opts(
            "gguf-quantize",
            "Usage: gguf-quantize [options] IN.gguf OUT.gguf RECIPE [THREADS]\n"
            "       gguf-quantize --dry-run [options] IN.gguf [OUT.gguf] RECIPE\n\n"
            "Quantizes IN.gguf into OUT.gguf (written to a temp file, renamed when complete) choosing each\n"
            "tensor's type as llama-quantize does for RECIPE. THREADS sets the worker threads.\n\n" +
                recipe_list());
        opts.value({"--imatrix"}, "FILE", "importance matrix (llama-imatrix GGUF or legacy .dat)", &imatrix_path);
        opts.value({"--tensor-type"}, "REGEX=TYPE",
                   "tensors whose name REGEX finds get TYPE (repeatable, first match wins)", &overrides);
        opts.value({"--token-embedding-type"}, "TYPE", "type of token_embd.weight", &token_type);
        opts.value({"--output-tensor-type"}, "TYPE", "type of output.weight", &output_type);
        opts.flag({"--pure"}, "the recipe's base type for every tensor it touches: no mixture rules", &pure);
        opts.flag({"--dry-run"}, "print the plan (per tensor: old -> new type, size, bits per weight), write nothing",
                  &dry_run);
        opts.flag({"--json"}, "machine-readable output on stdout", &json);
        opts.unsupported({"--leave-output-tensor"}, false,
                         "not supported yet; --output-tensor-type f16 (or the input's type) keeps output.weight precise");
        opts.unsupported({"--include-weights", "--exclude-weights"}, true,
                         "not supported yet: the importance matrix applies to every tensor it has data for");
        opts.unsupported({"--tensor-type-file"}, true, "not supported yet; repeat --tensor-type REGEX=TYPE");
        opts.unsupported({"--prune-layers"}, true, "not supported yet");
        opts.unsupported({"--override-kv"}, true, "not supported yet");
        opts.unsupported({"--allow-requantize"}, false, "not supported yet: quantize from the f32/f16/bf16 model");
        opts.unsupported({"--keep-split"}, false, "not supported yet: split models are not read yet");
        if (opts.parse(argc, argv) == appcommon::OptionSet::Outcome::Exit) return 0;
        std::vector<std::string> args = opts.positional();

        int threads = 0;
        if (args.size() >= 3 && is_count(args.back())) {
            threads = std::stoi(args.back());
            if (threads < 1) throw appcommon::UsageError{"THREADS must be at least 1"};
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
        inputs.options.pure = pure;
        if (!token_type.empty()) inputs.options.token_embedding_type = parse_type(token_type, "--token-embedding-type");
        if (!output_type.empty()) inputs.options.output_tensor_type = parse_type(output_type, "--output-tensor-type");
        for (const auto& o : overrides) inputs.options.overrides.push_back(parse_override(o));
        if (threads > 0) omp_set_num_threads(threads);

        const gguf::File in = gguf::File::open(run.input);
        std::optional<quant::Imatrix> imatrix;
        if (!imatrix_path.empty()) {
            imatrix = quant::Imatrix::load(imatrix_path);
            inputs.imatrix = &*imatrix;
            run.imatrix = &*imatrix;
        }
        const quant::QuantPlan plan = quant::make_plan(in, inputs);
        for (const auto& w : plan.warnings) std::cerr << "warning: " << w << "\n";

        if (!dry_run) {
            appcommon::Progress progress(plan.tensors.size());
            quant::write_quantized(in, plan, inputs.imatrix, *run.output, [&](size_t i, const quant::QuantPlan& p) {
                progress.step(tensor_label(p.tensors[i]));
            });
            progress.done();
        }
        if (json) print_json(std::cout, plan, run);
        else if (dry_run) print_plan_text(std::cout, plan, run);
        else print_summary_text(std::cout, plan, run);
        return 0;
    });
}
