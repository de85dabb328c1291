#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "gguf/error.h"
#include "kld_base_file.h"
#include "quant/float16.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "safe_output.h"

namespace runtime {

namespace {

// log(sum(exp(x - max))) and max, in double: the scored quantities are differences of these.
struct LogSumExp {
    float max;
    double lse;  // of x - max
};

LogSumExp log_sum_exp(std::span<const float> x) {
    const float mx = *std::max_element(x.begin(), x.end());
    double sum = 0;
    for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
    return {mx, std::log(sum)};
}

int argmax(std::span<const float> x) { return static_cast<int>(std::max_element(x.begin(), x.end()) - x.begin()); }

// A result is a number or an error: never a silent NaN (a non-finite logit is caught by the
// context; this catches what the arithmetic here or a damaged base file could still produce).
void require_finite(double v, const char* what) {
    if (!std::isfinite(v)) throw Error(std::string("perplexity: the ") + what + " is not finite (" + std::to_string(v) + ")");
}

void finish(PerplexityResult& r, double sum_nll, double sum_nll2) {
    if (r.n_scored == 0) throw Error("perplexity: no position was scored (the chunks are too short)");
    const double n = static_cast<double>(r.n_scored);
    r.mean_nll = sum_nll / n;
    r.ppl = std::exp(r.mean_nll);
    const double var = n > 1 ? std::max(0.0, (sum_nll2 / n - r.mean_nll * r.mean_nll) / (n - 1)) : 0.0;
    r.ppl_stderr = r.ppl * std::sqrt(var);
    require_finite(r.ppl, "perplexity");
    require_finite(r.ppl_stderr, "perplexity's standard error");
}

}  // namespace

int evaluate_chunks(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                    const ScoredVisitor& visit) {
    const int n_ctx = params.n_ctx;
    if (n_ctx < 2) throw Error("perplexity: chunk size must be at least 2, got " + std::to_string(n_ctx));
    if (n_ctx > ctx.n_ctx()) {
        throw Error("perplexity: chunk size " + std::to_string(n_ctx) + " exceeds the context size " +
                    std::to_string(ctx.n_ctx()));
    }
    const int available = static_cast<int>(tokens.size() / static_cast<size_t>(n_ctx));
    if (available == 0) {
        throw Error("perplexity: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                    std::to_string(n_ctx));
    }
    if (params.n_chunks == 0) throw Error("perplexity: 0 chunks asked for (-1 means all)");
    const int n_chunks = params.n_chunks < 0 ? available : std::min(params.n_chunks, available);
    const int first = n_ctx / 2;
    const int n_vocab = ctx.n_vocab();
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    for (int c = 0; c < n_chunks; ++c) {
        std::copy_n(tokens.begin() + static_cast<ptrdiff_t>(c) * n_ctx, n_ctx, chunk.begin());
        if (params.add_bos) chunk[0] = params.bos;
        ctx.truncate(0);
        for (int start = 0; start < n_ctx; start += ctx.n_batch()) {
            const int m = std::min(ctx.n_batch(), n_ctx - start);
            const bool scored = start + m > first;
            const auto logits = ctx.decode({chunk.data() + start, static_cast<size_t>(m)}, scored);
            if (!scored) continue;
            // position j's logits predict token j + 1; the last position predicts nothing in the chunk
            for (int j = std::max(first, start); j < std::min(start + m, n_ctx - 1); ++j) {
                visit(logits.subspan(static_cast<size_t>(j - start) * n_vocab, static_cast<size_t>(n_vocab)),
                      chunk[static_cast<size_t>(j + 1)]);
            }
        }
        if (params.progress) params.progress(c + 1, n_chunks);
    }
    return n_chunks;
}

PerplexityParams perplexity_params(const Tokenizer& tokenizer, int n_ctx, int n_chunks,
                                   std::function<void(int, int)> progress) {
    PerplexityParams p;
    p.n_ctx = n_ctx;
    p.n_chunks = n_chunks;
    p.add_bos = tokenizer.add_bos();
    p.bos = tokenizer.bos();
    p.progress = std::move(progress);
    return p;
}

PerplexityResult perplexity(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params) {
    PerplexityResult r;
    double sum = 0, sum2 = 0;
    r.n_chunks = evaluate_chunks(ctx, tokens, params, [&](std::span<const float> logits, int32_t next) {
        const LogSumExp l = log_sum_exp(logits);
        const double nll = l.lse - (static_cast<double>(logits[static_cast<size_t>(next)]) - l.max);
        sum += nll;
        sum2 += nll * nll;
        ++r.n_scored;
    });
    finish(r, sum, sum2);
    return r;
}

PerplexityResult save_kld_base(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                   const std::string& path) {
    SafeOutput out(path);
    const int n_vocab = ctx.n_vocab();
    const int available = params.n_ctx > 0 ? static_cast<int>(tokens.size() / static_cast<size_t>(params.n_ctx)) : 0;
    const int n_chunks = params.n_chunks < 0 ? available : std::min(params.n_chunks, available);
    KldHeader h{};
    std::memcpy(h.magic, kKldMagic, sizeof kKldMagic);
    h.n_vocab = static_cast<uint32_t>(n_vocab);
    h.n_ctx = static_cast<uint32_t>(params.n_ctx);
    h.n_chunks = static_cast<uint32_t>(std::max(n_chunks, 0));
    h.first = static_cast<uint32_t>(params.n_ctx / 2);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    // the tokens as evaluated (BOS substituted), so the comparison runs on exactly the same input
    std::vector<int32_t> chunk_tokens(tokens.begin(), tokens.begin() + static_cast<ptrdiff_t>(h.n_chunks) * params.n_ctx);
    if (params.add_bos) {
        for (uint32_t c = 0; c < h.n_chunks; ++c) chunk_tokens[static_cast<size_t>(c) * params.n_ctx] = params.bos;
    }
    out.write(chunk_tokens.data(), chunk_tokens.size() * 4);

    std::vector<uint16_t> row(static_cast<size_t>(n_vocab));
    PerplexityResult r;
    double sum = 0, sum2 = 0;
    PerplexityParams p = params;
    p.add_bos = false;  // already substituted above
    p.n_chunks = static_cast<int>(h.n_chunks);
    if (n_chunks <= 0) evaluate_chunks(ctx, tokens, p, {});  // throws the same error as a perplexity run
    r.n_chunks = evaluate_chunks(ctx, chunk_tokens, p, [&](std::span<const float> logits, int32_t next) {
        const LogSumExp l = log_sum_exp(logits);
        const double nll = l.lse - (static_cast<double>(logits[static_cast<size_t>(next)]) - l.max);
        sum += nll;
        sum2 += nll * nll;
        ++r.n_scored;
        const float lse = static_cast<float>(l.lse);
        for (size_t i = 0; i < row.size(); ++i) row[i] = quant::f32_to_f16(logits[i] - l.max);
        out.write(reinterpret_cast<const char*>(&l.max), 4);
        out.write(reinterpret_cast<const char*>(&lse), 4);
        out.write(row.data(), row.size() * 2);
    });
    finish(r, sum, sum2);  // a non-finite result must not leave a base file behind
    out.commit();
    return r;
}

KldResult compare_kld_base(Context& ctx, const std::string& path, const std::function<void(int, int)>& progress,
                           const PerplexityParams& chunking) {
    const int n_vocab = ctx.n_vocab();
    KldBaseFile base(path, n_vocab, chunking);
    const double floor = base.log_p_floor();
    KldResult r;
    std::vector<double> log_p;
    std::vector<double> klds;
    double sum_nll = 0, sum_nll2 = 0, base_nll = 0, sum_kld = 0, sum_kld2 = 0;
    int64_t same = 0;
    PerplexityParams params;
    params.n_ctx = base.n_ctx();
    params.n_chunks = base.n_chunks();
    params.progress = progress;
    r.ppl.n_chunks = evaluate_chunks(ctx, base.tokens(), params, [&](std::span<const float> logits, int32_t next) {
        base.next(log_p);
        const LogSumExp l = log_sum_exp(logits);
        double kld = 0;
        int base_top = 0;
        for (int i = 0; i < n_vocab; ++i) {
            const double lp = log_p[static_cast<size_t>(i)];
            if (lp > log_p[static_cast<size_t>(base_top)]) base_top = i;
            if (lp <= floor) continue;
            const double log_q = static_cast<double>(logits[static_cast<size_t>(i)]) - l.max - l.lse;
            kld += std::exp(lp) * (lp - log_q);
        }
        const double nll = l.lse - (static_cast<double>(logits[static_cast<size_t>(next)]) - l.max);
        sum_nll += nll;
        sum_nll2 += nll * nll;
        base_nll -= log_p[static_cast<size_t>(next)];
        sum_kld += kld;
        sum_kld2 += kld * kld;
        klds.push_back(kld);
        same += base_top == argmax(logits);
        ++r.ppl.n_scored;
    });
    finish(r.ppl, sum_nll, sum_nll2);
    const double n = static_cast<double>(klds.size());
    for (double k : klds) {
        if (!std::isfinite(k)) throw Error(path + ": a KL divergence is not finite (damaged base file?)");
    }
    r.n_positions = r.ppl.n_scored;
    r.base_ppl = std::exp(base_nll / n);
    r.mean_kld = sum_kld / n;
    r.kld_stderr = n > 1 ? std::sqrt(std::max(0.0, (sum_kld2 / n - r.mean_kld * r.mean_kld) / (n - 1))) : 0.0;
    std::sort(klds.begin(), klds.end());
    auto quantile = [&](double q) { return klds[static_cast<size_t>(std::min(n - 1, std::floor(q * (n - 1))))]; };
    r.median_kld = quantile(0.5);
    r.p99_kld = quantile(0.99);
    r.max_kld = klds.back();
    r.same_top = static_cast<double>(same) / n;
    require_finite(r.base_ppl, "base model's perplexity");
    return r;
}

}  // namespace runtime
