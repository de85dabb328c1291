// Text generation from a prompt, and chat with the model's chat template; tokens stream to stdout.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "modes.h"
#include "options.h"
#include "runtime/chat_template.h"
#include "runtime/error.h"
#include "runtime/sampler.h"

namespace gguf_run {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct GenerationOptions {
    int n_predict = -1;
    bool ignore_eos = false;
    runtime::SamplerParams sampler;
    long long seed = -1;

    void add_to(po::options_description& desc) {
        desc.add_options()
            ("n-predict,n", po::value<int>(&n_predict)->default_value(-1), "tokens to generate (-1: until end of text or full context)")
            ("temp", po::value<float>(&sampler.temperature)->default_value(0.8f), "temperature (0: greedy)")
            ("top-k", po::value<int>(&sampler.top_k)->default_value(40), "top-k (0: off)")
            ("top-p", po::value<float>(&sampler.top_p)->default_value(0.95f), "top-p (1: off)")
            ("min-p", po::value<float>(&sampler.min_p)->default_value(0.05f), "min-p (0: off)")
            ("repeat-penalty", po::value<float>(&sampler.repeat_penalty)->default_value(1.0f), "repetition penalty (1: off)")
            ("repeat-last-n", po::value<int>(&sampler.repeat_last_n)->default_value(64), "tokens the penalty looks back on")
            ("seed,s", po::value<long long>(&seed)->default_value(-1), "random seed (-1: from the clock)")
            ("ignore-eos", po::bool_switch(&ignore_eos), "keep generating past end-of-text tokens");
    }

    // Before the model is loaded: a bad value must not wait for a multi-gigabyte load to be reported.
    void validate() const {
        if (n_predict < -1) throw appcommon::UsageError{"-n must be -1 (no limit) or >= 0"};
        try {
            runtime::validate_sampler_params(sampler);
        } catch (const runtime::Error& e) {
            throw appcommon::UsageError{e.what()};
        }
    }

    runtime::SamplerParams params() const {
        runtime::SamplerParams p = sampler;
        p.seed = seed >= 0 ? static_cast<uint64_t>(seed) : static_cast<uint64_t>(Clock::now().time_since_epoch().count());
        return p;
    }
};

struct Stats {
    int n_prompt = 0, n_gen = 0;
    double prompt_s = 0, gen_s = 0;
};

// Decodes `prompt` (already in ctx up to ctx.n_past()) and samples until EOG, n_predict or a full context.
// `emit` receives each piece of text as it completes.
template <typename Emit>
std::string generate(runtime::Context& ctx, const runtime::Tokenizer& tok, runtime::Sampler& sampler,
                     const std::vector<int32_t>& new_tokens, const GenerationOptions& g, Stats& stats, Emit emit) {
    auto t0 = Clock::now();
    auto logits = ctx.decode(new_tokens);
    for (int32_t t : new_tokens) sampler.accept(t);
    stats.n_prompt += static_cast<int>(new_tokens.size());
    stats.prompt_s += seconds_since(t0);

    runtime::StreamingDecoder decoder(tok);
    std::string text;
    t0 = Clock::now();
    for (int i = 0; g.n_predict < 0 || i < g.n_predict; ++i) {
        const int32_t next = sampler.sample(logits);
        if (!g.ignore_eos && tok.is_eog(next)) break;
        sampler.accept(next);
        const std::string piece = decoder.push(next);
        text += piece;
        emit(piece);
        ++stats.n_gen;
        if (ctx.n_past() >= ctx.n_ctx()) {
            std::fprintf(stderr, "\n[context full after %d tokens]\n", ctx.n_past());
            break;
        }
        logits = ctx.decode({&next, 1});
    }
    const std::string rest = decoder.flush();
    text += rest;
    emit(rest);
    stats.gen_s += seconds_since(t0);
    return text;
}

void print_stats(const Stats& s) {
    std::fprintf(stderr, "\nprompt: %d tokens in %.3f s (%.2f tok/s); generation: %d tokens in %.3f s (%.2f tok/s)\n",
                 s.n_prompt, s.prompt_s, s.prompt_s > 0 ? s.n_prompt / s.prompt_s : 0.0, s.n_gen, s.gen_s,
                 s.gen_s > 0 ? s.n_gen / s.gen_s : 0.0);
}

void check_fits(const runtime::Context& ctx, size_t n_tokens) {
    if (n_tokens >= static_cast<size_t>(ctx.n_ctx())) {
        throw runtime::Error("the prompt is " + std::to_string(n_tokens) + " tokens, the context holds " +
                             std::to_string(ctx.n_ctx()) + " (raise -c)");
    }
}

}  // namespace

int run_generate(const std::vector<std::string>& args) {
    CommonOptions common;
    GenerationOptions gen;
    std::string prompt;
    po::options_description desc("Options");
    common.add_to(desc, 0);
    desc.add_options()("prompt,p", po::value<std::string>(&prompt), "prompt text (special tokens like <|im_start|> are parsed)");
    gen.add_to(desc);
    po::variables_map vm;
    po::parsed_options parsed(nullptr);
    if (!parse(args, desc, nullptr, "Usage: gguf-run [generate] -m MODEL -p PROMPT [-n N] [options]", vm, &parsed)) return 0;
    if (!vm.count("prompt")) throw appcommon::UsageError{"no prompt given (-p TEXT)"};
    gen.validate();

    Loaded l = load(common, parsed, true);
    runtime::Sampler sampler(gen.params(), l.context->n_vocab());
    const auto tokens = l.tokenizer->encode(prompt, true, true);
    if (tokens.empty()) throw runtime::Error("the prompt is empty after tokenization");
    check_fits(*l.context, tokens.size());

    Stats stats;
    const std::string text = generate(*l.context, *l.tokenizer, sampler, tokens, gen, stats, [&](const std::string& piece) {
        if (common.json) return;
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    });
    if (common.json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object()
            .field("text", text)
            .field("prompt_tokens", stats.n_prompt)
            .field("generated_tokens", stats.n_gen)
            .field("prompt_tokens_per_second", stats.prompt_s > 0 ? stats.n_prompt / stats.prompt_s : 0.0)
            .field("generation_tokens_per_second", stats.gen_s > 0 ? stats.n_gen / stats.gen_s : 0.0)
            .end_object();
        std::cout << "\n";
    } else {
        std::printf("\n");
    }
    print_stats(stats);
    return 0;
}

int run_chat(const std::vector<std::string>& args) {
    CommonOptions common;
    GenerationOptions gen;
    std::string system;
    po::options_description desc("Options");
    common.add_to(desc, 0);
    desc.add_options()("system", po::value<std::string>(&system), "system prompt");
    gen.add_to(desc);
    po::variables_map vm;
    po::parsed_options parsed(nullptr);
    if (!parse(args, desc, nullptr,
               "Usage: gguf-run chat -m MODEL [--system TEXT] [options]\n\n"
               "Reads one user message per line from stdin and answers with the model's chat template.",
               vm, &parsed)) {
        return 0;
    }
    gen.validate();
    Loaded l = load(common, parsed, true);
    const runtime::ChatFormat format =
        runtime::detect_chat_format(l.model->metadata().get_string_or("tokenizer.chat_template", ""));
    std::fprintf(stderr, "chat template: %s\n", runtime::chat_format_name(format));
    runtime::Sampler sampler(gen.params(), l.context->n_vocab());
    std::vector<runtime::ChatMessage> messages;
    if (!system.empty()) messages.push_back({"system", system});
    std::vector<int32_t> in_context;  // the tokens the KV cache holds, to reuse the shared prefix
    const bool interactive = ::isatty(STDIN_FILENO) == 1;
    Stats stats;
    std::string line;
    while (true) {
        if (interactive) std::fprintf(stderr, "> ");
        if (!std::getline(std::cin, line)) break;
        if (line.empty()) continue;
        messages.push_back({"user", line});
        const auto tokens = l.tokenizer->encode(runtime::format_chat(format, messages, true), true, true);
        check_fits(*l.context, tokens.size());
        size_t keep = 0;
        while (keep < in_context.size() && keep < tokens.size() - 1 && in_context[keep] == tokens[keep]) ++keep;
        l.context->truncate(static_cast<int>(keep));
        in_context.assign(tokens.begin(), tokens.end());
        const std::vector<int32_t> fresh(tokens.begin() + static_cast<ptrdiff_t>(keep), tokens.end());
        const std::string reply = generate(*l.context, *l.tokenizer, sampler, fresh, gen, stats, [](const std::string& piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        });
        std::printf("\n");
        std::fflush(stdout);
        // what the cache now holds past the prompt is the reply; re-tokenizing it next turn may differ,
        // which only shortens the reused prefix
        in_context.resize(static_cast<size_t>(l.context->n_past()), -1);
        messages.push_back({"assistant", runtime::chat_reply_content(format, reply)});
    }
    print_stats(stats);
    return 0;
}

}  // namespace gguf_run
