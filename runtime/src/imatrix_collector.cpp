#include "runtime/imatrix_collector.h"

#include "runtime/error.h"

namespace runtime {

namespace {

void add_squares(double* sums, const float* x, int64_t n) {
    for (int64_t j = 0; j < n; ++j) sums[j] += static_cast<double>(x[j]) * x[j];
}

// Stops the context reporting to the collector however the evaluation ends.
class CollectorGuard {
public:
    CollectorGuard(Context& ctx, ActivationCollector& c) : ctx_(ctx) { ctx_.set_collector(&c); }
    ~CollectorGuard() { ctx_.set_collector(nullptr); }
    CollectorGuard(const CollectorGuard&) = delete;
    CollectorGuard& operator=(const CollectorGuard&) = delete;

private:
    Context& ctx_;
};

}  // namespace

bool ImatrixCollector::wanted(const std::string& name) const {
    // the blocks' matrices; the output head only on request (llama-imatrix's default)
    return name.starts_with("blk.") || (params_.process_output && name == "output.weight");
}

quant::ImatrixStats& ImatrixCollector::stats(const Weight& w, size_t n_mat) {
    quant::ImatrixStats& s = data_.entries[w.name];
    const size_t n_values = static_cast<size_t>(w.n_in) * n_mat;
    if (s.sums.empty()) {
        s.sums.assign(n_values, 0.0);
        s.counts.assign(n_mat, 0);
    }
    // a file merged before collection may hold one count for all experts
    if (s.counts.size() == 1 && n_mat > 1) s.counts.resize(n_mat, s.counts[0]);
    if (s.sums.size() != n_values || s.counts.size() != n_mat) {
        throw Error("imatrix entry '" + w.name + "' has " + std::to_string(s.sums.size()) + " values for " +
                    std::to_string(s.counts.size()) + " matrices; the model's tensor needs " + std::to_string(n_values) +
                    " for " + std::to_string(n_mat) + " (an imatrix of another model?)");
    }
    return s;
}

void ImatrixCollector::matmul_input(const Weight& w, const Tensor& x) {
    if (!wanted(w.name) || x.rows < params_.min_rows) return;
    quant::ImatrixStats& s = stats(w, 1);
    for (int64_t r = 0; r < x.rows; ++r) add_squares(s.sums.data(), x.row(r), x.cols);
    s.counts[0] += x.rows;
}

void ImatrixCollector::expert_input(const Weight& w, const Routing& r, const float* rows, int64_t ld, bool per_slot) {
    if (!wanted(w.name)) return;
    quant::ImatrixStats& s = stats(w, static_cast<size_t>(w.n_mat));
    const int64_t n_slots = static_cast<int64_t>(r.n_tokens) * r.k;
    for (int64_t slot = 0; slot < n_slots; ++slot) {
        const int32_t e = r.ids[slot];
        if (e < 0 || e >= w.n_mat) throw Error("imatrix: expert id " + std::to_string(e) + " out of range for " + w.name);
        const float* x = rows + (per_slot ? slot : slot / r.k) * ld;
        add_squares(s.sums.data() + static_cast<size_t>(e) * static_cast<size_t>(w.n_in), x, w.n_in);
        ++s.counts[static_cast<size_t>(e)];
    }
}

PerplexityResult collect_imatrix(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                                 ImatrixCollector& collector) {
    PerplexityResult r;
    {
        CollectorGuard guard(ctx, collector);
        r = perplexity(ctx, tokens, params);
    }
    quant::ImatrixData& d = collector.data();
    d.chunk_count += static_cast<uint32_t>(r.n_chunks);
    d.chunk_size = static_cast<uint32_t>(params.n_ctx);
    return r;
}

}  // namespace runtime
