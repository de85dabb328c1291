// How much each weight matrix's quantization costs in KL divergence, for choosing types per tensor
// under a budget (quant/allocation.h).
//
// The cost of type t for tensor T is predicted as s_T * E_T(t): E_T(t) is the importance-weighted
// squared quantization error of T (quant::weighted_quantization_error, importance = the imatrix's mean
// squared input per column), cheap to compute for every type; s_T, the KL divergence per unit of that
// error, is measured once per tensor with the runtime: T alone quantized to the probe type, every
// other tensor as in the source, against the source model on calibration text. docs/quantize.md shows
// how well s_T * E_T(t) predicts the measured KL divergence on the fixtures.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/types.h"
#include "quant/imatrix.h"

namespace runtime {

struct SensitivityParams {
    std::vector<gguf::GgmlType> candidates;  // the types to predict costs for
    gguf::GgmlType probe = gguf::GgmlType::Q3_K;
    int n_ctx = 256;     // tokens per chunk of calibration text
    int n_chunks = 8;    // chunks evaluated per measurement
    int n_threads = 0;
    std::string work_dir;  // where the probe files are written (one at a time)
    std::function<void(size_t done, size_t total, const std::string& tensor)> progress;
};

struct TensorSensitivity {
    std::string name;
    gguf::GgmlType probe = gguf::GgmlType::Q3_K;
    double probe_kld = 0;    // measured: mean KL divergence added by this tensor alone at the probe type
    double probe_error = 0;  // E_T(probe)
    std::vector<std::pair<gguf::GgmlType, double>> errors;  // E_T(t) per candidate that fits the rows

    // s_T * E_T(t); nullopt for a type that does not fit the tensor's rows
    std::optional<double> predicted_kld(gguf::GgmlType t) const;
};

// Measures every tensor in `names` (matrices of `source`, which must be unquantized) on `tokens`
// (calibration text). `imatrix` may be null (uniform importance). Throws runtime::Error or
// quant::Error on bad input.
std::vector<TensorSensitivity> measure_sensitivity(const std::string& source_path, const std::vector<std::string>& names,
                                                   const quant::Imatrix* imatrix, const std::vector<int32_t>& tokens,
                                                   const SensitivityParams& params);

// The mean KL divergence of `model_path` against the base distributions in `kld_base`
// (runtime/perplexity.h's file), on `n_threads` threads.
double mean_kld_against(const std::string& model_path, const std::string& kld_base, int n_ctx, int n_threads);

// Sensitivities as text, one tensor a line, for the calibration cache; parse() throws runtime::Error
// on anything it did not write.
std::string serialize_sensitivities(const std::vector<TensorSensitivity>& s);
std::vector<TensorSensitivity> parse_sensitivities(const std::string& text);

}  // namespace runtime
