// Quality of a model against a base model (PPL, KL divergence, same-top) without the base's full logits:
// a compact baseline keeps, per scored position, the base model's top-K log-probabilities and the mass of
// all other tokens. From it the KL divergence of a model under test is bounded from both sides; the upper
// bound is what a quality gate must use, as it never passes a model that the full computation would fail.
// The derivation is in docs/verify.md ("How close is the compact baseline").
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/context.h"
#include "runtime/perplexity.h"

namespace runtime {

// One scored position of the base model.
struct CompactRow {
    std::vector<int32_t> ids;  // the top-K tokens, most likely first
    std::vector<double> logp;  // their log-probabilities
    double rest = 0;           // probability of every other token together (exact: stored in double)
    float logp_next = 0;       // log-probability of the token that follows in the text
    // How far each stored probability may be from the true one, relatively: 0 for a row made in memory,
    // 2^-24 for one read from a file (probabilities stored as float). The bounds widen by it, so they
    // stay bounds rather than approximately so.
    double rel_error = 0;
};

// What a compact baseline keeps per position: the top_k most likely tokens, and more until the mass left
// over is at most max_rest (1: exactly top_k); never a token less likely than the smallest normal float
// (~1e-38), which stays in the left-over mass. The upper bound's slack is at most about
// max_rest * log(p_K / q_min) per position (docs/verify.md), so max_rest is what makes it tight.
struct CompactParams {
    int top_k = 32;
    double max_rest = 1e-3;
};

CompactRow compact_row(std::span<const float> logits, const CompactParams& params, int32_t next);

struct KldBounds {
    double lower = 0;  // KL of the distributions with the tail tokens merged into one outcome
    double upper = 0;  // the most the KL can be with the tail mass spread in the worst way allowed
};

// Bounds of KL(base || test) from the base's compact row and the test model's log-probabilities of every
// token. `scratch` is reused between calls to avoid allocating per position.
KldBounds kld_bounds(const CompactRow& base, std::span<const double> test_logprobs, std::vector<double>& scratch);

// KL(base || test) from both models' full logits.
double kld_exact(std::span<const float> base_logits, std::span<const float> test_logits);

struct CompactBaselineInfo {
    uint32_t n_vocab = 0, n_ctx = 0, n_chunks = 0;
    CompactParams params;
    uint64_t n_positions = 0;
};

// Evaluates the base model on the text as perplexity() does and writes the compact baseline (temp file,
// renamed when complete). Returns the base model's perplexity.
PerplexityResult save_compact_baseline(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                                       const CompactParams& compact, const std::string& path);

// Reads and checks a compact baseline's header (and that the file can hold the rows it announces);
// anything else throws runtime::Error naming the file.
CompactBaselineInfo read_compact_baseline_info(const std::string& path);

struct QualityResult {
    double ppl = 0, base_ppl = 0;
    double ppl_ratio() const { return base_ppl > 0 ? ppl / base_ppl : 0; }
    // Exact when both models were evaluated; from a compact baseline these are the upper bounds.
    double mean_kld = 0, p99_kld = 0, max_kld = 0;
    // The lower bounds from a compact baseline (equal to the figures above when exact).
    double mean_kld_lower = 0, p99_kld_lower = 0;
    double same_top = 0;  // fraction of positions where both models' most likely token agrees
    int64_t n_positions = 0;
    int n_chunks = 0;
    bool exact = false;
    int top_k = 0;          // of the compact baseline; 0 when exact
    double mean_stored = 0;  // tokens stored per position in the compact baseline
    std::vector<double> klds;  // per position (upper bounds with a compact baseline), in text order
};

// Evaluates the baseline's tokens with this context's model and compares. A baseline of another vocabulary,
// a damaged or truncated file, or a context smaller than its chunks throws runtime::Error.
QualityResult compare_compact_baseline(Context& ctx, const std::string& path,
                                       const std::function<void(int, int)>& progress = {});

// Evaluates both models chunk by chunk on the same tokens and compares them exactly (memory: one chunk of
// the base model's scored logits).
QualityResult compare_models(Context& base, Context& test, std::span<const int32_t> tokens,
                             const PerplexityParams& params);

}  // namespace runtime
