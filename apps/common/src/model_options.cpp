#include "appcommon/model_options.h"

#include <cctype>
#include <climits>
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

namespace {

// -t N: 0 means all cores, otherwise 1..kMaxThreads (checked while parsing, before any model is read).
int threads_value(const std::string& v, std::string_view option) {
    const long long n = parse_int64(v, LLONG_MIN, LLONG_MAX);
    return n == 0 ? 0 : check_threads(n, option);
}

}  // namespace

void CommonOptions::add_to(appcommon::OptionSet& opts, int default_ctx, bool bench) {
    using appcommon::BadValue;
    using appcommon::parse_int;
    ctx_size = default_ctx;
    opts.section("Model and context");
    if (bench) {
        opts.value({"-m", "--model"}, "FILE", "GGUF model (repeatable: each is measured)", &models);
        opts.value({"-t", "--threads"}, "N,...", "CPU threads, a comma list (0: all cores)", [this](const std::string& v) {
            thread_list.clear();
            size_t start = 0;
            while (start <= v.size()) {
                size_t end = v.find(',', start);
                if (end == std::string::npos) end = v.size();
                thread_list.push_back(threads_value(v.substr(start, end - start), "-t"));
                start = end + 1;
            }
        });
    } else {
        opts.value({"-m", "--model"}, "FILE", "GGUF model", &model);
        opts.value({"-t", "--threads"}, "N", "CPU threads (0: all cores)",
                   [this, &opts](const std::string& v) { threads = threads_value(v, opts.current()); });
    }
    opts.value({"-c", "--ctx-size"}, "N",
               "context in tokens (0: the model's, at most 4096; default " + std::to_string(default_ctx) + ")",
               [this](const std::string& v) { ctx_size = parse_int(v, 0, INT_MAX); });
    opts.value({"-b", "--batch-size"}, "N", "tokens per forward step (default 512)",
               [this](const std::string& v) { batch_size = parse_int(v, 1, INT_MAX); });
    // checked while parsing, so that a type the runtime lacks is a usage error before any loading
    const auto kv_type = [&opts](std::string* target) {
        return [target, &opts](const std::string& v) {
            try {
                runtime::parse_kv_type(v, opts.current());
            } catch (const runtime::Error&) {
                throw BadValue{"KV cache type '" + v + "' is not one of f32, f16, q8_0, q4_0"};
            }
            *target = v;
        };
    };
    opts.value({"-ctk", "--cache-type-k"}, "T", "KV cache type of K: f16 (default), f32, q8_0, q4_0", kv_type(&cache_type_k));
    opts.value({"-ctv", "--cache-type-v"}, "T", "KV cache type of V: f16 (default), f32, q8_0, q4_0", kv_type(&cache_type_v));
    opts.flag({"--prefault"}, "read the CPU weights into RAM at load, with all threads (fast first tokens from a cold disk)",
              &prefault);
    opts.flag({"--mlock"}, "lock the CPU weights in RAM (no eviction under memory pressure)", &mlock);
    opts.flag({"--json"}, "machine-readable output on stdout", &json);
    opts.flag({"-v", "--verbose", "--log-verbose", "--verbose-prompt"}, "more detail on stderr (prompt tokens, sampler settings)", &verbose);
    opts.flag({"--log-disable"}, "no start-up report (model, placement, memory) on stderr", &quiet);

    opts.section("Placement (llama.cpp's rules; the plan is printed at start)");
    opts.value({"-ngl", "--gpu-layers", "--n-gpu-layers"}, "N",
               "layers on the GPU counted from the output layer; 'all' for every layer", [this](const std::string& v) {
                   if (v != "all" && v != "auto") parse_int(v, -1, 1 << 20);
                   n_gpu_layers = v;
               });
    opts.value({"-ncmoe", "--n-cpu-moe"}, "N", "keep the expert tensors of the first N layers on the CPU",
               [this, &opts](const std::string& v) {
                   parse_int(v, 0, INT_MAX);  // checked against the model's blocks when it is loaded
                   placement_rules.emplace_back(opts.current(), v);
               });
    opts.flag({"-cmoe", "--cpu-moe"}, "keep all expert tensors on the CPU",
              [this, &opts] { placement_rules.emplace_back(opts.current(), ""); });
    opts.value({"-ot", "--override-tensor"}, "REGEX=DEV,...",
               "tensors matching REGEX go to DEV (CPU, CUDA0); first match wins",
               [this, &opts](const std::string& v) { placement_rules.emplace_back(opts.current(), v); });
    // llama.cpp's --fit takes on|off; "--fit" alone means on (the next argument is taken unless it is an
    // option, so a wrong value is named rather than taken for a stray argument)
    opts.optional_value_if({"-fit", "--fit"}, "on|off",
                           "choose -ngl and which layers' experts stay on the CPU so that the model, KV cache and "
                           "scratch fit the GPU's free memory (or --vram-budget) less --fit-target",
                           [](const std::string& next) { return !next.starts_with("-"); },
                           [this](const std::string& v) { fit = v.empty() ? "on" : v; });
    opts.value({"-fitt", "--fit-target"}, "MiB", "memory --fit leaves free (default 1024; 256 with --vram-budget)",
               [this](const std::string& v) { fit_target_mib = parse_int(v, 0, INT_MAX); });
    opts.value({"--vram-budget"}, "SIZE", "plan --fit for a GPU of this much memory (8G, 7500M) instead of the free memory",
               &vram_budget);
    opts.value({"-mg", "--main-gpu"}, "N", "the GPU -ngl offloads to: only 0 (CUDA0); other GPUs take tensors via -ot",
               [](const std::string& v) {
                   if (parse_int(v, 0, 1 << 10) != 0) throw BadValue{"-ngl offloads to CUDA0 only; use -ot REGEX=CUDA" + v};
               });
    opts.value({"-ts", "--tensor-split"}, "N0,N1,...",
               "share of the layers per GPU: only all on the first GPU (e.g. 1 or 1,0); use -ot for more",
               [](const std::string& v) {
                   size_t start = 0;
                   for (int i = 0; start <= v.size(); ++i) {
                       size_t end = v.find_first_of(",/", start);
                       if (end == std::string::npos) end = v.size();
                       const float share = appcommon::parse_float(v.substr(start, end - start), 0, 1e9f);
                       if (i > 0 && share != 0) throw BadValue{"splitting layers over several GPUs is not supported yet; use -ot REGEX=CUDA1"};
                       start = end + 1;
                   }
               });
    opts.value({"-sm", "--split-mode"}, "none|layer", "layers stay whole on one device (row split is not supported)",
               [](const std::string& v) {
                   if (v != "none" && v != "layer") throw BadValue{"'" + v + "' is not supported (none or layer)"};
               });
    opts.value({"-np", "--parallel"}, "1", "parallel sequences: gguf-run runs one", [](const std::string& v) {
        if (parse_int(v, 1, 1 << 20) != 1) throw BadValue{"gguf-run decodes one sequence at a time (-np 1)"};
    });

    opts.section("Accepted for llama.cpp command lines, no effect yet (each prints a note when given)");
    opts.value({"-ub", "--ubatch-size"}, "N", "no effect: the runtime has no micro-batch yet; -b sets the step",
               [this, &opts](const std::string& v) {
                   ubatch_size = parse_int(v, 1, 1 << 30);
                   std::fprintf(stderr, "note: %s: no effect: the runtime has no micro-batch size yet (-b sets the forward step)\n",
                                opts.current().c_str());
               });
    opts.optional_value({"-fa", "--flash-attn"}, "on|off|auto",
                        "no effect: no flash-attention switch; each backend has one attention kernel",
                        {"on", "off", "auto", "1", "0", "true", "false", "enabled", "disabled"}, "on",
                        [this, &opts](const std::string& v) {
                            if (v != "auto") appcommon::parse_on_off(v);
                            flash_attn = v;
                            std::fprintf(stderr,
                                         "note: %s %s: no effect: there is no flash-attention switch; each "
                                         "backend runs its one attention implementation\n",
                                         opts.current().c_str(), v.c_str());
                        });
    opts.ignored({"--no-mmap"}, "", "the model is always memory-mapped (the runtime has no read-into-memory option yet)");
    opts.flag({"--mmap"}, "memory-map the model (always the case)", [] {});
    opts.ignored({"-tb", "--threads-batch"}, "N", "-t sets the threads for prompts and generation alike",
                 [](const std::string& v) { parse_int(v, -1, runtime::ContextParams::kMaxThreads); });
    // llama.cpp's --color took no value before it took on|off|auto: both forms are accepted
    opts.optional_value({"-co", "--color"}, "on|off|auto", "no effect: output is never coloured",
                        {"on", "off", "auto", "1", "0", "true", "false", "enabled", "disabled"}, "on",
                        [&opts](const std::string& v) {
                            if (v != "auto") appcommon::parse_on_off(v);
                            std::fprintf(stderr, "note: %s: no effect: output is never coloured\n", opts.current().c_str());
                        });
    if (!bench) opts.flag({"--warmup", "--no-warmup"}, "accepted: generation has no warm-up run", [] {});
    opts.flag({"--simple-io", "--no-context-shift", "--no-display-prompt", "-no-cnv", "--no-conversation", "--no-jinja"},
              "accepted: gguf-run behaves so already", [] {});
}

void add_unsupported_llama_options(appcommon::OptionSet& opts) {
    const std::string soon = "not supported yet";
    // generation and chat have them (gguf-run's sampling options); bench and perplexity do not sample
    opts.unsupported({"--grammar", "--grammar-file", "-j", "--json-schema", "-jf", "--json-schema-file"}, true,
                     "only generation and chat sample tokens");
    opts.unsupported({"-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-hft", "--hf-token", "-mu", "--model-url"}, true,
                     "gguf-run does not download models; download the GGUF and pass -m FILE");
    opts.unsupported({"--lora", "--lora-scaled", "--control-vector", "--control-vector-scaled"}, true,
                     soon + " (adapters); merge the adapter into the model first");
    opts.unsupported({"-mm", "--mmproj", "--mmproj-url", "--image", "--audio"}, true,
                     "gguf-run runs text models only");
    opts.unsupported({"-md", "--model-draft", "--draft", "--draft-max", "--draft-min", "-ngld", "--spec-type"}, true,
                     soon + " (speculative decoding: gguf-run generate takes -md with a gemma4-assistant)");
    opts.unsupported({"--rope-scaling", "--rope-scale", "--rope-freq-base", "--rope-freq-scale", "--yarn-orig-ctx",
                      "--yarn-ext-factor", "--yarn-attn-factor", "--yarn-beta-slow", "--yarn-beta-fast"},
                     true, soon + ": RoPE settings come from the model's metadata");
    opts.unsupported({"--override-kv"}, true, soon + "; edit the metadata with a GGUF editor");
    opts.unsupported({"-i", "--interactive", "-if", "--interactive-first"}, false,
                     "use chat mode: 'gguf-run chat' or -cnv (one message per stdin line)");
    opts.unsupported({"--in-prefix", "--in-suffix", "--in-prefix-bos"}, true, soon + " (chat mode uses the model's template)");
    opts.unsupported({"--keep", "--context-shift"}, false, soon + ": generation stops when the context is full");
    opts.unsupported({"-nkvo", "--no-kv-offload"}, false, soon + ": each layer's KV cache lives with its attention");
    opts.unsupported({"-dev", "--device"}, true, soon + "; place tensors with -ngl and -ot REGEX=CUDA0");
    opts.unsupported({"--numa"}, true, soon);
    opts.unsupported({"--rpc"}, true, "gguf-run has no RPC backend");
    opts.unsupported({"-sp", "--special"}, false, soon + " (special tokens are not printed)");
    opts.unsupported({"--embedding", "--embeddings", "--pooling", "--rerank"}, false, "gguf-run has no embedding mode");
    opts.unsupported({"--prompt-cache", "--prompt-cache-all", "--prompt-cache-ro", "--slot-save-path"}, true, soon);
    opts.unsupported({"--reasoning-budget", "--reasoning-format"}, true,
                     soon + " (for Qwen3-style templates: --chat-template-kwargs '{\"enable_thinking\": false}')");
    opts.unsupported({"-cb", "--cont-batching", "-kvu", "--kv-unified", "--swa-full", "--cache-reuse"}, false,
                     "server options: gguf-run runs one sequence");
    opts.unsupported({"--host", "--port", "--api-key", "-a", "--alias"}, true, "gguf-run is not a server");
    opts.unsupported({"-C", "--cpu-mask", "-Cr", "--cpu-range", "--cpu-strict", "--prio", "--poll", "-Cb",
                      "--cpu-mask-batch", "-Crb", "--cpu-range-batch", "--cpu-strict-batch", "--prio-batch",
                      "--poll-batch"},
                     true, soon + ": threads are not pinned or prioritised; -t sets how many");
    opts.unsupported({"-lv", "--verbosity", "--log-verbosity", "--log-file", "--log-colors", "--log-prefix",
                      "--log-timestamps"},
                     false, soon + ": messages go to stderr (redirect it); -v adds detail, --log-disable removes the report");
    opts.unsupported({"--ppl-stride", "--ppl-output-type", "--hellaswag", "--winogrande", "--multiple-choice"}, true,
                     soon + " (perplexity scores chunks as llama-perplexity does by default)");
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

runtime::PlacementOptions placement_options(const CommonOptions& o) {
    runtime::PlacementOptions p;
    p.n_gpu_layers = (o.n_gpu_layers == "all" || o.n_gpu_layers == "auto") ? -1 : std::stoi(o.n_gpu_layers);
    // overrides in the order given: the first matching rule decides, as in llama.cpp
    for (const auto& [option, value] : o.placement_rules) {
        std::vector<runtime::PlacementRule> rules;
        if (option == "-ot" || option == "--override-tensor") rules = runtime::parse_override_rules(value);
        else if (option == "-cmoe" || option == "--cpu-moe") rules = runtime::cpu_moe_rules();
        else rules = runtime::n_cpu_moe_rules(std::stoi(value));
        for (auto& r : rules) p.overrides.push_back(std::move(r));
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
    cp.n_outputs = o.n_outputs;
    cp.n_threads = o.threads;
    cp.type_k = runtime::parse_kv_type(o.cache_type_k, "-ctk");
    cp.type_v = runtime::parse_kv_type(o.cache_type_v, "-ctv");
    return cp;
}

runtime::ModelOptions model_options(const CommonOptions& o) {
    runtime::ModelOptions mo;
    mo.placement = placement_options(o);
    mo.prefault = o.prefault;
    mo.mlock = o.mlock;
    if (o.fit != "on" && o.fit != "off") throw appcommon::UsageError{"--fit expects on or off, got '" + o.fit + "'"};
    if (!o.vram_budget.empty() && o.fit != "on") throw appcommon::UsageError{"--vram-budget plans for --fit: add --fit"};
    if (o.fit == "on") {
        const runtime::ContextParams cp = context_params(o);
        runtime::FitOptions f;
        f.budget = o.vram_budget.empty() ? 0 : parse_size(o.vram_budget, "--vram-budget");
        const int target = o.fit_target_mib >= 0        ? o.fit_target_mib
                           : o.vram_budget.empty() ? CommonOptions::kFitTargetFreeMib
                                                   : CommonOptions::kFitTargetBudgetMib;
        f.margin = static_cast<uint64_t>(target) << 20;
        f.n_ctx = cp.n_ctx > 0 ? cp.n_ctx : runtime::ContextParams::kDefaultMaxCtx;
        f.n_batch = cp.n_batch;
        f.n_outputs = cp.n_outputs > 0 ? cp.n_outputs : cp.n_batch;
        f.type_k = cp.type_k;
        f.type_v = cp.type_v;
        mo.fit = f;
    }
    return mo;
}

Loaded load(const CommonOptions& o, bool with_tokenizer) {
    if (o.model.empty()) throw appcommon::UsageError{"no model given (-m MODEL.gguf)"};
    const runtime::ContextParams cp = context_params(o);
    const runtime::ModelOptions mo = model_options(o);

    Loaded l;
    l.model = runtime::Model::load(o.model, mo);
    if (with_tokenizer) l.tokenizer = runtime::Tokenizer::from_metadata(l.model->metadata());
    try {
        l.context = std::make_unique<runtime::Context>(*l.model, cp);
    } catch (const std::bad_alloc&) {
        throw runtime::Error("out of memory creating a context of " + std::to_string(cp.n_ctx) +
                             " tokens (KV cache and scratch); try a smaller -c or -b, or -ctk/-ctv q8_0");
    }
    if (o.quiet) return l;
    std::fprintf(stderr, "model: %s (%s)\n%s%s", o.model.c_str(), model_description(*l.model).c_str(),
                 l.model->fit_report().c_str(), l.model->plan().describe().c_str());
    std::fprintf(stderr, "context: %d tokens, batch %d, KV cache %s/%s, %d threads\n%s", l.context->n_ctx(),
                 l.context->n_batch(), o.cache_type_k.c_str(), o.cache_type_v.c_str(), l.context->n_threads(),
                 runtime::describe_memory(l.context->memory()).c_str());
    for (const auto& w : l.context->warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
    return l;
}

}  // namespace appcommon
