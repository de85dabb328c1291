// Per-tensor types chosen from measured sensitivity (runtime/sensitivity.h) to minimise the predicted
// KL divergence under a size budget, or the size under a KL divergence bound, over the tensors a
// recipe quantizes. The measurements are cached on disk, keyed by a hash of everything they depend on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quant/recipe.h"
#include "runtime/sensitivity.h"

namespace runtime {

struct TypeSearchParams {
    std::optional<uint64_t> file_bytes;  // --target-size / --target-bpw, as the whole output file's size
    std::optional<double> max_kld;       // --max-kld: the predicted mean KL divergence
    SensitivityParams sensitivity;       // candidates, probe, chunks, threads (work_dir: set by the search)
    std::string cache_dir;               // empty: no cache
};

struct TypeSearchResult {
    std::vector<quant::TensorTypeOverride> overrides;  // exact-name patterns, to put first in the plan's
    std::map<std::string, double> predicted_kld;       // per chosen tensor
    double predicted_total = 0;
    bool cache_hit = false;
    std::string cache_file;  // where the sensitivities were read or written ("" without a cache)
};

// The key of the calibration cache: the source's metadata and tensor data, the imatrix's values, the
// calibration tokens and the measurement's parameters (16 hex digits).
std::string calibration_cache_key(const gguf::File& source, const quant::Imatrix* imatrix,
                                  const std::vector<int32_t>& tokens, const std::vector<std::string>& names,
                                  const SensitivityParams& params);

// An importance matrix of `source_path` on the calibration tokens (every chunk of n_ctx, the output head
// included), read from `cache_dir` when an earlier run made it for the same model, tokens and chunk size,
// else collected and stored there. `hit` says which.
quant::Imatrix calibration_imatrix(const std::string& source_path, const std::vector<int32_t>& tokens, int n_ctx,
                                   int n_threads, const std::string& cache_dir, bool* hit);

// `inputs` is the plan the search starts from (recipe, imatrix, the user's own overrides, whose
// tensors keep their type). Throws runtime::Error or quant::Error when the target cannot be met.
TypeSearchResult search_types(const std::string& source_path, const quant::PlanInputs& inputs,
                              const std::vector<int32_t>& tokens, const TypeSearchParams& params);

}  // namespace runtime
