// The options every app that runs a model shares (gguf-run, gguf-verify): model, threads, context,
// placement, KV cache, --fit, and the start-up report: placement plan and memory per device.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "appcommon/options.h"
#include "runtime/context.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace appcommon {

struct CommonOptions {
    std::string model;
    int threads = 0;
    int ctx_size = 0;
    int batch_size = 512;
    // Not a flag: the logits rows a step of the command returns at most (runtime::ContextParams::n_outputs;
    // 0: -b). Generation and benchmarks read only the last token's.
    int n_outputs = 0;
    std::string n_gpu_layers = "0";
    // -ot, --cpu-moe and --n-cpu-moe in command-line order: (option, value); the first match wins
    std::vector<std::pair<std::string, std::string>> placement_rules;
    std::string cache_type_k = "f16", cache_type_v = "f16";
    std::string fit = "off";
    // --fit-target; -1: the default for the plan (kFitTargetFreeMib against the GPU's free memory,
    // kFitTargetBudgetMib under --vram-budget)
    int fit_target_mib = -1;
    std::string vram_budget;
    // llama.cpp's margin, for a GPU that other programs share; a --vram-budget is a card planned for this
    // run alone, where the margin only covers the plan's error: it counts the CUDA context and loaded
    // kernels (kCudaContextBytes), and the peaks measured at 8 and 16 GiB came 15-32 MiB under the plan.
    static constexpr int kFitTargetFreeMib = 1024, kFitTargetBudgetMib = 256;
    // Accepted with llama.cpp's meaning; the runtime has no field for them yet, so each prints a note
    // when given (see add_to). Kept here so that wiring them in is one line when the runtime has them.
    int ubatch_size = 512;
    std::string flash_attn = "auto";
    bool prefault = false, mlock = false;
    bool json = false;
    bool verbose = false;
    bool quiet = false;  // --log-disable: no start-up report
    // bench: -m and -t take several values (llama-bench's lists)
    std::vector<std::string> models;
    std::vector<int> thread_list;

    // Adds -m, -t, -c, -b, -ub, -ngl, --n-cpu-moe, --cpu-moe, -ot, --fit, -fitt, --vram-budget, -ctk, -ctv,
    // --prefault, --mlock, -fa, --no-mmap, -mg, -ts, -sm, -np, --json, -v and the accepted no-op spellings.
    // With `bench`, -m is repeatable and -t takes a comma list (into models / thread_list), and
    // --warmup/--no-warmup are left to the bench mode.
    void add_to(OptionSet& opts, int default_ctx, bool bench = false);
};

// llama.cpp options no gguf-run mode has: each fails naming the option and why. Add after a mode's own.
void add_unsupported_llama_options(OptionSet& opts);

struct Loaded {
    std::unique_ptr<runtime::Model> model;
    std::unique_ptr<runtime::Tokenizer> tokenizer;  // null when not asked for
    std::unique_ptr<runtime::Context> context;
};

// The placement rules in command-line order (-ngl, --n-cpu-moe, --cpu-moe, -ot), prefault/mlock and
// --fit; and the context parameters.
runtime::ModelOptions model_options(const CommonOptions& o);
runtime::ContextParams context_params(const CommonOptions& o);

// Loads the model with the placement rules in command-line order, creates the context and prints the
// plan and memory breakdown on stderr (unless --log-disable).
Loaded load(const CommonOptions& o, bool with_tokenizer);

// "qwen3moe 15.49M params, 29.57 MiB, mostly bf16"
std::string model_description(const runtime::Model& model);
// "qwen3moe bf16": the architecture and the type holding most of the weight bytes
std::string model_label(const runtime::Model& model);

}  // namespace appcommon
