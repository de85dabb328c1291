// Importance-matrix collection as llama-imatrix does it: while the model evaluates calibration text,
// the sum of squared inputs per input column of every matrix product of the blocks (per expert for
// stacked expert tensors, with per-expert counts). The result is quant::ImatrixData, which writes
// llama.cpp's file formats.
#pragma once

#include <span>
#include <string>

#include "quant/imatrix_data.h"
#include "runtime/activation_collector.h"
#include "runtime/context.h"
#include "runtime/perplexity.h"

namespace runtime {

struct ImatrixParams {
    bool process_output = false;  // also collect output.weight (llama-imatrix's --process-output)
    // llama-imatrix ignores dense products of fewer rows (single-token steps); so does this, so that
    // files from both tools agree whatever the batch size
    int64_t min_rows = 16;
};

class ImatrixCollector final : public ActivationCollector {
public:
    explicit ImatrixCollector(ImatrixParams params = {}) : params_(params) {}

    void matmul_input(const Weight& w, const Tensor& x) override;
    void expert_input(const Weight& w, const Routing& r, const float* rows, int64_t ld, bool per_slot) override;

    // What has been collected (and what earlier files were merged into it).
    quant::ImatrixData& data() { return data_; }
    const quant::ImatrixData& data() const { return data_; }

private:
    bool wanted(const std::string& name) const;
    quant::ImatrixStats& stats(const Weight& w, size_t n_mat);

    ImatrixParams params_;
    quant::ImatrixData data_;
};

// Evaluates `tokens` as perplexity() does (chunks of params.n_ctx tokens, each from position 0) with
// `collector` receiving every matrix product's input, and counts the chunks in its data (chunk_size =
// params.n_ctx). Returns the text's perplexity, which llama-imatrix prints as well. A context whose
// weights are not all on the CPU throws runtime::Error.
PerplexityResult collect_imatrix(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                                 ImatrixCollector& collector);

}  // namespace runtime
