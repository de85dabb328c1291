#include "targets.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "appcommon/cli.h"
#include "appcommon/text.h"
#include "runtime/context.h"
#include "runtime/kld_baseline.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "runtime/type_search.h"

namespace {

std::vector<int32_t> tokens_of(const std::string& model_path, const std::string& text_path) {
    const std::string text = appcommon::read_file(text_path);
    const gguf::File f = gguf::File::open(model_path);
    return runtime::Tokenizer::from_metadata(f.metadata())->encode(text, true, false);
}

}  // namespace

uint64_t parse_size(const std::string& text) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        throw appcommon::UsageError{"--target-size: not a size: '" + text + "'"};
    }
    const std::string unit = text.substr(used);
    double mult = 1;
    if (unit == "K" || unit == "KiB") mult = 1024.0;
    else if (unit == "M" || unit == "MiB") mult = 1024.0 * 1024;
    else if (unit == "G" || unit == "GiB") mult = 1024.0 * 1024 * 1024;
    else if (unit == "kB") mult = 1e3;
    else if (unit == "MB") mult = 1e6;
    else if (unit == "GB") mult = 1e9;
    else if (!unit.empty()) throw appcommon::UsageError{"--target-size: unknown unit '" + unit + "' (K, M, G, kB, MB, GB)"};
    if (!(v > 0) || !std::isfinite(v * mult) || v * mult > 1e15) {
        throw appcommon::UsageError{"--target-size must be a positive size, got '" + text + "'"};
    }
    return static_cast<uint64_t>(v * mult);
}

std::string default_cache_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/gguf-suite";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/gguf-suite";
    return "";
}

TargetOutcome choose_target_types(const std::string& input, quant::PlanInputs& inputs, std::optional<quant::Imatrix>& imatrix,
                                  const TargetOptions& t, int threads) {
    if (t.calibration.empty()) throw appcommon::UsageError{"--target-bpw, --target-size and --max-kld need --calibration TEXT"};
    TargetOutcome out;
    const std::vector<int32_t> tokens = tokens_of(input, t.calibration);
    if (!imatrix) {
        bool hit = false;
        imatrix = runtime::calibration_imatrix(input, tokens, t.ctx, threads, t.cache_dir, &hit);
        out.notes += std::string("imatrix ") + (hit ? "read from the cache" : "collected") + " (" + imatrix->path() + ")\n";
        inputs.imatrix = &*imatrix;
        inputs.options.have_imatrix = true;
    }
    runtime::TypeSearchParams p;
    p.cache_dir = t.cache_dir;
    p.max_kld = t.max_kld;
    if (t.target_size) p.file_bytes = parse_size(*t.target_size);
    if (t.target_bpw) {
        const gguf::File f = gguf::File::open(input);
        uint64_t n = 0;
        for (const auto& ti : f.tensors()) n += ti.n_elements();
        p.file_bytes = static_cast<uint64_t>(*t.target_bpw * static_cast<double>(n) / 8.0);
    }
    for (const auto& name : t.candidates) {
        const auto ty = gguf::type_from_name(name);
        if (!ty || !quant::is_weight_storage_type(*ty)) throw std::runtime_error("--candidate-types: unknown type '" + name + "'");
        p.sensitivity.candidates.push_back(*ty);
    }
    p.sensitivity.n_ctx = t.ctx;
    p.sensitivity.n_chunks = t.calibration_chunks;
    p.sensitivity.n_threads = threads;
    p.sensitivity.progress = [](size_t done, size_t total, const std::string& name) {
        if (!appcommon::stderr_is_terminal()) return;
        std::fprintf(stderr, "\rsensitivity [%zu/%zu] %-40s", done, total, name.c_str());
        if (done == total) std::fprintf(stderr, "\n");
    };
    const runtime::TypeSearchResult r = runtime::search_types(input, inputs, tokens, p);
    out.notes += std::string("sensitivities ") + (r.cache_hit ? "read from the cache" : "measured") +
                 (r.cache_file.empty() ? "" : " (" + r.cache_file + ")") + "\n";
    // the search names only tensors no user pattern fixed, so their order does not matter
    inputs.options.overrides.insert(inputs.options.overrides.begin(), r.overrides.begin(), r.overrides.end());
    out.predicted_kld = r.predicted_kld;
    out.predicted_total = r.predicted_total;
    return out;
}

double verify_kld(const std::string& source, const std::string& quantized, const std::string& text, int ctx, int chunks,
                  int threads) {
    const auto base = runtime::Model::load(source);
    const auto test = runtime::Model::load(quantized);
    runtime::ContextParams cp;
    cp.n_ctx = ctx;
    cp.n_batch = ctx;
    cp.n_threads = threads;
    runtime::Context bc(*base, cp), tc(*test, cp);
    const auto tok = runtime::Tokenizer::from_metadata(base->metadata());
    const runtime::PerplexityParams p = runtime::perplexity_params(*tok, ctx, chunks);
    return runtime::compare_models(bc, tc, tokens_of(source, text), p).mean_kld;
}
