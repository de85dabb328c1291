// gguf-run perplexity: llama-perplexity's measurement on a text file, and KL divergence against a
// base model's saved distributions (--kl-divergence-base FILE, then --kl-divergence).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "gguf/output_file.h"
#include "modes.h"
#include "options.h"
#include "runtime/error.h"
#include "runtime/perplexity.h"
#include "text_input.h"

namespace gguf_run {

namespace {

struct PerplexityOptions {
    CommonOptions common;
    std::string text_file, kld_base;
    int chunks = -1;
    bool kld = false;  // --kl-divergence: compare with kld_base instead of measuring text_file
};

// Parses and checks `args` before the model loads; false when they only asked for help.
bool parse_perplexity_options(const std::vector<std::string>& args, PerplexityOptions& o) {
    appcommon::OptionSet opts(
        "gguf-run",
        "Usage: gguf-run perplexity -m MODEL -f TEXT [-c 512] [--chunks N] [--kl-divergence-base FILE]\n"
        "       gguf-run perplexity -m MODEL --kl-divergence-base FILE --kl-divergence\n\n"
        "Chunks of -c tokens, each from position 0; the predictions of each chunk's second half are scored.");
    o.common.add_to(opts, 512);
    opts.section("Perplexity");
    opts.value({"-f", "--file"}, "FILE", "text to evaluate", &o.text_file);
    opts.value({"--chunks"}, "N", "chunks to evaluate (-1: all)",
               [&](const std::string& v) { o.chunks = appcommon::parse_int(v, -1, INT_MAX); });
    opts.value({"--kl-divergence-base", "--save-all-logits"}, "FILE",
               "file of base-model distributions: written with -f, read with --kl-divergence (also llama-perplexity's)",
               &o.kld_base);
    opts.flag({"--kl-divergence"}, "compare with the distributions saved in --kl-divergence-base", &o.kld);
    add_unsupported_llama_options(opts);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return false;
    if (!opts.positional().empty()) throw appcommon::UsageError{"unexpected argument '" + opts.positional().front() + "'"};
    if (o.kld && o.kld_base.empty()) throw appcommon::UsageError{"--kl-divergence needs --kl-divergence-base FILE"};
    if (!o.kld && o.text_file.empty()) throw appcommon::UsageError{"no text given (-f FILE)"};
    // -c 2 and 3 score no position at all (the second half of a chunk predicts nothing inside it)
    if (o.common.ctx_size < 4) throw appcommon::UsageError{"-c must be at least 4 for perplexity"};
    if (o.chunks == 0 || o.chunks < -1) throw appcommon::UsageError{"--chunks must be -1 (all) or at least 1"};
    if (!o.kld) check_text_length(o.text_file, o.common.ctx_size);
    if (o.kld && ::access(o.kld_base.c_str(), R_OK) != 0) {
        throw runtime::Error(o.kld_base + ": cannot open: " + std::strerror(errno));  // before loading the model
    }
    if (!o.kld && !o.kld_base.empty()) {
        // the base file is replaced as llama.cpp does, but never the model or the text it came from
        gguf::OutputPolicy policy;
        policy.inputs = {o.common.model, o.text_file};
        gguf::check_output_path(o.kld_base, policy);
    }
    return true;
}

void print_kld(const runtime::KldResult& r, bool json) {
    if (json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object()
            .field("ppl", r.ppl.ppl)
            .field("ppl_stderr", r.ppl.ppl_stderr)
            .field("base_ppl", r.base_ppl)
            .field("mean_kld", r.mean_kld)
            .field("kld_stderr", r.kld_stderr)
            .field("median_kld", r.median_kld)
            .field("p99_kld", r.p99_kld)
            .field("max_kld", r.max_kld)
            .field("same_top", r.same_top)
            .field("positions", static_cast<int64_t>(r.n_positions))
            .end_object();
        std::cout << "\n";
        return;
    }
    std::printf("PPL          %.4f +/- %.4f (base %.4f)\n", r.ppl.ppl, r.ppl.ppl_stderr, r.base_ppl);
    std::printf("mean KLD     %.6f +/- %.6f\nmedian KLD   %.6f\np99 KLD      %.6f\nmax KLD      %.6f\n",
                r.mean_kld, r.kld_stderr, r.median_kld, r.p99_kld, r.max_kld);
    std::printf("same top     %.3f %% over %lld positions\n", 100 * r.same_top, static_cast<long long>(r.n_positions));
}

// `kld_base`: where the base distributions were saved, empty when they were not.
void print_perplexity(const runtime::PerplexityResult& r, bool json, const std::string& kld_base) {
    if (json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object()
            .field("ppl", r.ppl)
            .field("ppl_stderr", r.ppl_stderr)
            .field("chunks", r.n_chunks)
            .field("tokens_scored", static_cast<int64_t>(r.n_scored))
            .end_object();
        std::cout << "\n";
        return;
    }
    std::printf("Final estimate: PPL = %.4f +/- %.5f (%d chunks, %lld tokens scored)\n", r.ppl, r.ppl_stderr,
                r.n_chunks, static_cast<long long>(r.n_scored));
    if (!kld_base.empty()) std::printf("base distributions saved to %s\n", kld_base.c_str());
}

}  // namespace

int run_perplexity(const std::vector<std::string>& args) {
    PerplexityOptions o;
    if (!parse_perplexity_options(args, o)) return 0;
    Loaded l = load(o.common, true);  // --kl-divergence too: a llama-perplexity base file needs its BOS
    runtime::Context& ctx = *l.context;
    if (o.kld) {
        // a llama-perplexity base file keeps the text's tokens: each chunk's BOS comes from this vocabulary
        const runtime::PerplexityParams chunking = runtime::perplexity_params(*l.tokenizer, ctx.n_ctx(), -1);
        print_kld(runtime::compare_kld_base(ctx, o.kld_base, chunk_progress, chunking), o.common.json);
        return 0;
    }
    const ChunkedText text = chunked_text(l, o.text_file, o.chunks);
    const runtime::PerplexityResult r = o.kld_base.empty() ? runtime::perplexity(ctx, text.tokens, text.params)
                                                           : runtime::save_kld_base(ctx, text.tokens, text.params, o.kld_base);
    print_perplexity(r, o.common.json, o.kld_base);
    return 0;
}

}  // namespace gguf_run
