// gguf-quantize's sensitivity-driven mode (--target-bpw / --target-size / --max-kld) and its
// --verify-kld gate: options in, runtime calls (runtime/type_search.h, runtime/kld_baseline.h) out.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quant/imatrix.h"
#include "quant/recipe.h"

struct TargetOptions {
    std::optional<double> target_bpw;
    std::optional<std::string> target_size;
    std::optional<double> max_kld;
    std::string calibration;       // text file
    int calibration_chunks = 8;    // chunks per sensitivity measurement
    int ctx = 256;                 // tokens per chunk
    std::string cache_dir;         // "" with --no-cache
    std::vector<std::string> candidates;  // type names

    bool active() const { return target_bpw || target_size || max_kld; }
};

struct TargetOutcome {
    std::map<std::string, double> predicted_kld;  // per chosen tensor
    double predicted_total = 0;
    std::string notes;  // what was measured or read from the cache, for stderr
};

// "4.5M" -> bytes: a plain number of bytes, or with K/M/G (powers of 1024) or kB/MB/GB (powers of 1000).
uint64_t parse_size(const std::string& text);
// The default calibration cache: $XDG_CACHE_HOME/gguf-suite, else ~/.cache/gguf-suite ("" if neither).
std::string default_cache_dir();

// Chooses the types (collecting an imatrix from the calibration text when `imatrix` is empty, which is
// then set) and adds them to inputs.options.overrides.
TargetOutcome choose_target_types(const std::string& input, quant::PlanInputs& inputs, std::optional<quant::Imatrix>& imatrix,
                                  const TargetOptions& t, int threads);

// Mean KL divergence of `quantized` against `source` on `text` (chunks of ctx tokens, at most `chunks`),
// computed as gguf-verify computes it (runtime::compare_models).
double verify_kld(const std::string& source, const std::string& quantized, const std::string& text, int ctx, int chunks,
                  int threads);
