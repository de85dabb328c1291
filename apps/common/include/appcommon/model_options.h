// The options every app that runs a model shares (gguf-run, gguf-verify) (model, threads, context, placement, KV cache) and the
// start-up report: placement plan and memory per device.
#pragma once

#include <boost/program_options.hpp>
#include <memory>
#include <string>
#include <vector>

#include "runtime/context.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace appcommon {

namespace po = boost::program_options;

struct CommonOptions {
    std::string model;
    int threads = 0;
    int ctx_size = 0;
    int batch_size = 512;
    std::string n_gpu_layers = "0";
    std::string cache_type_k = "f16", cache_type_v = "f16";
    std::string fit = "off";
    int fit_target_mib = 1024;
    std::string vram_budget;
    bool json = false;
    bool prefault = false, mlock = false;

    // Adds -m, -t, -c, -b, -ngl, --n-cpu-moe, --cpu-moe, -ot, -ctk, -ctv, --prefault, --mlock, --json (and -h).
    void add_to(po::options_description& desc, int default_ctx);
};

// llama.cpp spells some long options with one dash (-ngl, -ot, -ctk, -ctv); Boost wants two.
std::vector<std::string> normalize_args(int argc, char** argv, int first);

// Parses; --help prints `usage` and `desc` and returns false. Unknown or malformed options throw
// (run_main turns them into exit status 2).
bool parse(const std::vector<std::string>& args, const po::options_description& desc,
           const po::positional_options_description* positional, const std::string& usage, po::variables_map& vm,
           po::parsed_options* parsed_out = nullptr);

struct Loaded {
    std::unique_ptr<runtime::Model> model;
    std::unique_ptr<runtime::Tokenizer> tokenizer;  // null when not asked for
    std::unique_ptr<runtime::Context> context;
};

// The placement rules in command-line order (-ngl, --n-cpu-moe, --cpu-moe, -ot), and the context parameters.
runtime::ModelOptions model_options(const CommonOptions& o, const po::parsed_options& parsed);
runtime::ContextParams context_params(const CommonOptions& o);

// Loads the model with the placement rules in command-line order, creates the context and prints the
// plan and memory breakdown on stderr.
Loaded load(const CommonOptions& o, const po::parsed_options& parsed, bool with_tokenizer);

// "qwen3moe 15.49M params, 29.57 MiB, mostly bf16"
std::string model_description(const runtime::Model& model);
// "qwen3moe bf16": the architecture and the type holding most of the weight bytes
std::string model_label(const runtime::Model& model);

}  // namespace appcommon
