#include "appcommon/model_options.h"

#include <cstdio>
#include <iostream>
#include <map>
#include <new>

#include "appcommon/cli.h"
#include "appcommon/validate.h"
#include "runtime/error.h"
#include "runtime/kv_cache.h"
#include "runtime/placement.h"

namespace appcommon {

void CommonOptions::add_to(po::options_description& desc, int default_ctx) {
    ctx_size = default_ctx;
    desc.add_options()
        ("help,h", "show this help")
        ("model,m", po::value<std::string>(&model), "GGUF model file")
        ("threads,t", po::value<int>(&threads)->default_value(0), "CPU threads (0: all cores)")
        ("ctx-size,c", po::value<int>(&ctx_size)->default_value(default_ctx),
         "context size in tokens (0: the model's, at most 4096)")
        ("batch-size,b", po::value<int>(&batch_size)->default_value(512), "tokens per forward step")
        ("n-gpu-layers", po::value<std::string>(&n_gpu_layers)->default_value("0"),
         "-ngl N: layers on the GPU counted from the output layer; 'all' for every layer")
        ("n-cpu-moe", po::value<int>(), "keep the expert tensors of the first N layers on the CPU")
        ("cpu-moe", po::bool_switch(), "keep all expert tensors on the CPU")
        ("override-tensor", po::value<std::vector<std::string>>()->composing(),
         "-ot REGEX=DEVICE[,...]: tensors matching REGEX go to DEVICE (CPU, CUDA0); first match wins")
        ("fit", po::value<std::string>(&fit)->implicit_value("on")->default_value("off"),
         "--fit [on|off]: choose -ngl and which layers' experts stay on the CPU so that the model, KV cache "
         "and scratch fit the GPU's free memory (or --vram-budget) less --fit-target")
        ("fit-target", po::value<int>(&fit_target_mib)->default_value(1024), "-fitt MiB: memory --fit leaves free")
        ("vram-budget", po::value<std::string>(&vram_budget),
         "SIZE (e.g. 8G, 7500M): plan --fit for a GPU of this much memory instead of the free memory")
        ("cache-type-k", po::value<std::string>(&cache_type_k)->default_value("f16"), "-ctk: f32, f16, q8_0, q4_0")
        ("cache-type-v", po::value<std::string>(&cache_type_v)->default_value("f16"), "-ctv: f32, f16, q8_0, q4_0")
        ("prefault", po::bool_switch(&prefault),
         "read the CPU weights into RAM at load, with all threads (fast first tokens from a cold disk)")
        ("mlock", po::bool_switch(&mlock), "lock the CPU weights in RAM (no eviction under memory pressure)")
        ("json", po::bool_switch(&json), "machine-readable output on stdout");
}

std::vector<std::string> normalize_args(int argc, char** argv, int first) {
    static const std::map<std::string, std::string> kSingleDash{{"-ngl", "--n-gpu-layers"},
                                                                {"-ot", "--override-tensor"},
                                                                {"-ctk", "--cache-type-k"},
                                                                {"-ctv", "--cache-type-v"},
                                                                {"-ncmoe", "--n-cpu-moe"},
                                                                {"-fitt", "--fit-target"},
                                                                {"-cmoe", "--cpu-moe"}};
    std::vector<std::string> out;
    for (int i = first; i < argc; ++i) {
        const auto it = kSingleDash.find(argv[i]);
        out.push_back(it != kSingleDash.end() ? it->second : argv[i]);
    }
    return out;
}

bool parse(const std::vector<std::string>& args, const po::options_description& desc,
           const po::positional_options_description* positional, const std::string& usage, po::variables_map& vm,
           po::parsed_options* parsed_out) {
    po::command_line_parser parser(args);
    parser.options(desc);
    if (positional) {
        parser.positional(*positional);
    }
    // no prefix guessing: "-n" must not be read as an abbreviation of a long option
    parser.style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing);
    po::parsed_options parsed = parser.run();
    po::store(parsed, vm);
    if (vm.count("help")) {
        std::cout << usage << "\n" << desc << "\n";
        return false;
    }
    po::notify(vm);
    if (parsed_out) *parsed_out = parsed;
    return true;
}

namespace {

// "8G", "7.5GiB", "7500M", "123456" (bytes) -> bytes
uint64_t parse_size(const std::string& text, const char* option) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    std::string unit = text.substr(used);
    for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
    if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
    const double scale = unit.empty() ? 1.0 : unit == "K" ? 1024.0 : unit == "M" ? 1048576.0 : unit == "G" ? 1073741824.0 : unit == "T" ? 1099511627776.0 : 0.0;
    if (used == 0 || scale == 0.0 || !(v > 0) || v * scale > 1e15) {
        throw appcommon::UsageError{std::string(option) + ": expected a size such as 8G or 7500M, got '" + text + "'"};
    }
    return static_cast<uint64_t>(v * scale);
}

runtime::PlacementOptions placement_options(const CommonOptions& o, const po::parsed_options& parsed) {
    runtime::PlacementOptions p;
    if (o.n_gpu_layers == "all" || o.n_gpu_layers == "auto") {
        p.n_gpu_layers = -1;
    } else {
        try {
            size_t used = 0;
            p.n_gpu_layers = std::stoi(o.n_gpu_layers, &used);
            if (used != o.n_gpu_layers.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw appcommon::UsageError{"-ngl expects a number or 'all', got '" + o.n_gpu_layers + "'"};
        }
    }
    // overrides in the order given: the first matching rule decides, as in llama.cpp
    for (const auto& opt : parsed.options) {
        if (opt.string_key == "override-tensor") {
            for (const auto& v : opt.value) {
                for (auto& r : runtime::parse_override_rules(v)) p.overrides.push_back(std::move(r));
            }
        } else if (opt.string_key == "cpu-moe") {
            for (auto& r : runtime::cpu_moe_rules()) p.overrides.push_back(std::move(r));
        } else if (opt.string_key == "n-cpu-moe") {
            for (auto& r : runtime::n_cpu_moe_rules(std::stoi(opt.value.at(0)))) p.overrides.push_back(std::move(r));
        }
    }
    return p;
}

}  // namespace

namespace {

std::string main_type(const runtime::Model& model) {
    std::map<std::string, uint64_t> by_type;
    for (const auto& t : model.file().tensors()) by_type[std::string(gguf::type_name(t.type))] += t.n_bytes();
    std::string main;
    uint64_t most = 0;
    for (const auto& [name, bytes] : by_type) {
        if (bytes > most) {
            most = bytes;
            main = name;
        }
    }
    return main;
}

}  // namespace

std::string model_label(const runtime::Model& model) {
    return model.hparams().arch_name + " " + main_type(model);
}

std::string model_description(const runtime::Model& model) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s %.2fM params, %s, mostly %s", model.hparams().arch_name.c_str(),
                  static_cast<double>(model.n_params()) / 1e6, runtime::format_bytes(model.weight_bytes()).c_str(),
                  main_type(model).c_str());
    return buf;
}

runtime::ContextParams context_params(const CommonOptions& o) {
    if (o.threads != 0) appcommon::check_threads(o.threads, "-t");  // 0: all cores
    if (o.ctx_size < 0) throw appcommon::UsageError{"-c must be >= 0 (0: the model's context)"};
    if (o.batch_size < 1) throw appcommon::UsageError{"-b must be >= 1"};
    runtime::ContextParams cp;
    cp.n_ctx = o.ctx_size;
    cp.n_batch = o.batch_size;
    cp.n_threads = o.threads;
    cp.type_k = runtime::parse_kv_type(o.cache_type_k, "-ctk");
    cp.type_v = runtime::parse_kv_type(o.cache_type_v, "-ctv");
    return cp;
}

runtime::ModelOptions model_options(const CommonOptions& o, const po::parsed_options& parsed) {
    runtime::ModelOptions mo;
    mo.placement = placement_options(o, parsed);
    mo.prefault = o.prefault;
    mo.mlock = o.mlock;
    if (o.fit != "on" && o.fit != "off") throw appcommon::UsageError{"--fit expects on or off, got '" + o.fit + "'"};
    if (o.fit_target_mib < 0) throw appcommon::UsageError{"--fit-target must be >= 0 MiB"};
    if (!o.vram_budget.empty() && o.fit != "on") throw appcommon::UsageError{"--vram-budget plans for --fit: add --fit"};
    if (o.fit == "on") {
        const runtime::ContextParams cp = context_params(o);
        runtime::FitOptions f;
        f.budget = o.vram_budget.empty() ? 0 : parse_size(o.vram_budget, "--vram-budget");
        f.margin = static_cast<uint64_t>(o.fit_target_mib) << 20;
        f.n_ctx = cp.n_ctx > 0 ? cp.n_ctx : runtime::ContextParams::kDefaultMaxCtx;
        f.n_batch = cp.n_batch;
        f.type_k = cp.type_k;
        f.type_v = cp.type_v;
        mo.fit = f;
    }
    return mo;
}

Loaded load(const CommonOptions& o, const po::parsed_options& parsed, bool with_tokenizer) {
    if (o.model.empty()) throw appcommon::UsageError{"no model given (-m MODEL.gguf)"};
    const runtime::ContextParams cp = context_params(o);
    const runtime::ModelOptions mo = model_options(o, parsed);

    Loaded l;
    l.model = runtime::Model::load(o.model, mo);
    if (with_tokenizer) l.tokenizer = runtime::Tokenizer::from_metadata(l.model->metadata());
    try {
        l.context = std::make_unique<runtime::Context>(*l.model, cp);
    } catch (const std::bad_alloc&) {
        throw runtime::Error("out of memory creating a context of " + std::to_string(cp.n_ctx) +
                             " tokens (KV cache and scratch); try a smaller -c or -b, or -ctk/-ctv q8_0");
    }
    std::fprintf(stderr, "model: %s (%s)\n%s%s", o.model.c_str(), model_description(*l.model).c_str(),
                 l.model->fit_report().c_str(), l.model->plan().describe().c_str());
    std::fprintf(stderr, "context: %d tokens, batch %d, KV cache %s/%s, %d threads\n%s", l.context->n_ctx(),
                 l.context->n_batch(), o.cache_type_k.c_str(), o.cache_type_v.c_str(), l.context->n_threads(),
                 runtime::describe_memory(l.context->memory()).c_str());
    for (const auto& w : l.context->warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
    return l;
}

}  // namespace appcommon
