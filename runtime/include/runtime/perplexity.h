// Perplexity and KL divergence as llama.cpp's llama-perplexity defines them: the text's tokens cut
// into chunks of n_ctx, each evaluated from position 0, the predictions of the second half scored.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "runtime/context.h"

namespace runtime {

struct PerplexityParams {
    int n_ctx = 512;     // tokens per chunk (must fit the context)
    int n_chunks = -1;   // -1: as many whole chunks as the text holds
    bool add_bos = false;  // replace each chunk's first token by BOS, as llama.cpp does when the vocab asks
    int32_t bos = -1;
    // called after each chunk with (chunks done, chunks in all)
    std::function<void(int, int)> progress;
};

class Tokenizer;

// A text of `tokenizer`'s model cut into chunks of n_ctx (-1 chunks: all that the text holds), each
// starting with BOS when the vocabulary asks for one.
PerplexityParams perplexity_params(const Tokenizer& tokenizer, int n_ctx, int n_chunks,
                                   std::function<void(int, int)> progress = {});

struct PerplexityResult {
    double ppl = 0;
    double ppl_stderr = 0;  // by the delta method over the per-token NLL, as llama.cpp prints "+/-"
    double mean_nll = 0;
    int n_chunks = 0;
    int64_t n_scored = 0;
};

// Calls visit(logits row, the token it predicts) for every scored position of every chunk and returns
// the number of chunks. A text shorter than one chunk, or a chunk larger than the context, throws.
using ScoredVisitor = std::function<void(std::span<const float> logits, int32_t next)>;
int evaluate_chunks(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                    const ScoredVisitor& visit);

PerplexityResult perplexity(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params);

// --kl-divergence-base: the base model's scored distributions, saved compactly (per scored position
// the max logit, the log-sum-exp and every logit minus the max in f16) with the tokens they came from.
// Returns the base model's perplexity, measured on the way.
PerplexityResult save_kld_base(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                   const std::string& path);

struct KldResult {
    PerplexityResult ppl;       // of the model under test on the saved tokens
    double base_ppl = 0;        // of the base model, from the saved distributions
    double mean_kld = 0, kld_stderr = 0, median_kld = 0, p99_kld = 0, max_kld = 0;
    double same_top = 0;        // fraction of positions where both models' most likely token agrees
    int64_t n_positions = 0;
};

// --kl-divergence: evaluates the saved tokens with this context's model and compares. The file is
// save_kld_base's or llama-perplexity's --kl-divergence-base output (which keeps the text's tokens
// without the BOS that each chunk starts with: `chunking`'s add_bos and bos put it back, as
// perplexity_params gives them for the model's tokenizer). A file of another vocabulary or chunk size,
// or a damaged one, throws runtime::Error naming it.
KldResult compare_kld_base(Context& ctx, const std::string& path, const std::function<void(int, int)>& progress = {},
                           const PerplexityParams& chunking = {});

}  // namespace runtime
