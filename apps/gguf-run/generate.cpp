// Text generation from a prompt, and chat with the model's chat template; tokens stream to stdout.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "appcommon/text.h"
#include "chat_prompt.h"
#include "modes.h"
#include "options.h"
#include "sampling_options.h"
#include "runtime/chat_template.h"
#include "runtime/error.h"
#include "runtime/sampler.h"
#include "speculative.h"

namespace gguf_run {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct GenerationOptions {
    int n_predict = -1;
    bool ignore_eos = false;
    SamplingOptions sampling;
    long long seed = -1;
    std::vector<std::string> stop;  // -r: stop once the output contains one of these

    void add_to(appcommon::OptionSet& opts) {
        using appcommon::parse_float;
        using appcommon::parse_int;
        opts.section("Generation and sampling (llama.cpp's default chain and defaults)");
        // llama.cpp's -2 ("until the context is filled") is -1 here: without context shifting, -1 stops there too
        opts.value({"-n", "--predict", "--n-predict"}, "N",
                   "tokens to generate (-1 or -2: until end of text or a full context)",
                   [this](const std::string& v) { n_predict = std::max(parse_int(v, -2, INT_MAX), -1); });
        opts.value({"--temp", "--temperature"}, "T", "temperature (0: greedy; default 0.8)",
                   [this](const std::string& v) { sampling.sampler.temperature = parse_float(v, -1e9f, 1e9f); });
        opts.value({"--top-k"}, "N", "top-k (0: off; default 40)",
                   [this](const std::string& v) { sampling.sampler.top_k = parse_int(v, -1, INT_MAX); });
        opts.value({"--top-p"}, "P", "top-p (1: off; default 0.95)",
                   [this](const std::string& v) { sampling.sampler.top_p = parse_float(v, -1e9f, 1e9f); });
        opts.value({"--min-p"}, "P", "min-p (0: off; default 0.05)",
                   [this](const std::string& v) { sampling.sampler.min_p = parse_float(v, -1e9f, 1e9f); });
        opts.value({"--repeat-penalty"}, "X", "repetition penalty (1: off, the default)",
                   [this](const std::string& v) { sampling.sampler.repeat_penalty = parse_float(v, -1e9f, 1e9f); });
        opts.value({"--repeat-last-n"}, "N", "tokens the penalty looks back on (default 64)",
                   [this](const std::string& v) { sampling.sampler.repeat_last_n = parse_int(v, -1, INT_MAX); });
        opts.value({"-s", "--seed"}, "N", "random seed (-1: from the clock)",
                   [this](const std::string& v) { seed = appcommon::parse_int64(v, -1, LLONG_MAX); });
        opts.flag({"--ignore-eos"}, "keep generating past end-of-text tokens", &ignore_eos);
        opts.value({"-r", "--reverse-prompt"}, "TEXT", "stop once the output contains TEXT (repeatable)", &stop);
        opts.value({"--presence-penalty"}, "X", "subtract X from the logit of a token seen in the last --repeat-last-n (0: off)",
                   [this](const std::string& v) { sampling.sampler.presence_penalty = parse_float(v, -1e9f, 1e9f); });
        opts.value({"--frequency-penalty"}, "X", "subtract X per occurrence in the last --repeat-last-n (0: off)",
                   [this](const std::string& v) { sampling.sampler.frequency_penalty = parse_float(v, -1e9f, 1e9f); });
        sampling.add_to(opts);
    }

    // Before the model is loaded: a bad value must not wait for a multi-gigabyte load to be reported.
    void validate() {
        if (n_predict < -1) throw appcommon::UsageError{"-n must be -1 (no limit) or >= 0"};
        sampling.finish();
    }

    runtime::SamplerParams params() const {
        runtime::SamplerParams p = sampling.sampler;
        p.seed = seed >= 0 ? static_cast<uint64_t>(seed) : static_cast<uint64_t>(Clock::now().time_since_epoch().count());
        return p;
    }
};

// What the prompt is and how a conversation goes.
struct PromptOptions {
    std::string prompt, prompt_file, system, system_file, chat_template, chat_template_file, chat_template_kwargs;
    std::string reasoning = "auto";  // -rea: on/off set the template's enable_thinking, auto leaves it to the template
    bool escape = true;  // llama.cpp processes \n, \t... in -p and -sys by default
    bool conversation = false, single_turn = false, display_prompt = false, no_perf = false;

    void add_to(appcommon::OptionSet& opts, bool chat) {
        opts.section("Prompt and chat");
        opts.value({"-p", "--prompt"}, "TEXT",
                   chat ? "first user message (then stdin)" : "prompt text (special tokens like <|im_start|> are parsed)",
                   &prompt);
        opts.value({"-f", "--file"}, "FILE", chat ? "first user message from FILE" : "prompt from FILE", &prompt_file);
        opts.flag({"-e", "--escape"}, "process escapes (\\n, \\t, \\\\, \\xHH...) in -p and -sys (the default)",
                  [this] { escape = true; });
        opts.flag({"--no-escape"}, "take -p and -sys literally", [this] { escape = false; });
        opts.flag({"--display-prompt"}, "print the prompt before the generated text", &display_prompt);
        opts.flag({"--no-perf"}, "no timings at the end", &no_perf);
        opts.flag({"--perf"}, "timings at the end (the default)", [this] { no_perf = false; });
        opts.flag({"-cnv", "--conversation"}, "chat mode (the same as 'gguf-run chat')", &conversation);
        opts.value({"-sys", "--system-prompt", "--system"}, "TEXT", "system prompt (chat mode)", &system);
        opts.value({"-sysf", "--system-prompt-file"}, "FILE", "system prompt from FILE (chat mode)", &system_file);
        opts.flag({"-st", "--single-turn"}, "chat mode: answer one message, then exit", &single_turn);
        opts.value({"--chat-template"}, "NAME|JINJA",
                   "instead of the model's template: chatml, llama3, llama2, gemma, phi3, or a Jinja template's source",
                   &chat_template);
        opts.value({"--chat-template-file"}, "FILE", "a Jinja chat template instead of the model's", &chat_template_file);
        opts.value({"--chat-template-kwargs"}, "JSON",
                   "variables for the Jinja template, e.g. '{\"enable_thinking\": false}'", &chat_template_kwargs);
        opts.optional_value({"-rea", "--reasoning"}, "on|off|auto",
                            "thinking in chat: sets the template's enable_thinking (default auto: the template's own)",
                            {"on", "off", "auto", "1", "0", "true", "false", "enabled", "disabled"}, "on",
                            [this](const std::string& v) {
                                if (v != "auto") appcommon::parse_on_off(v);
                                reasoning = v;
                            });
        opts.flag({"--jinja"}, "render the model's Jinja chat template (always the case; see docs/chat.md)", [] {});
    }
};

struct Stats {
    int n_prompt = 0, n_gen = 0;
    double prompt_s = 0, gen_s = 0;
};

// Decodes `prompt` (already in ctx up to ctx.n_past()) and samples until EOG, n_predict or a full context.
// `emit` receives each piece of text as it completes.
// Whether one of the stop strings ends within the last `fresh` bytes of text (it can only have
// completed there).
bool contains_stop(const std::string& text, size_t fresh, const std::vector<std::string>& stops) {
    for (const auto& s : stops) {
        if (s.empty() || text.size() < s.size()) continue;
        const size_t from = text.size() >= fresh + s.size() ? text.size() - fresh - s.size() + 1 : 0;
        if (fresh > 0 && text.find(s, from) != std::string::npos) return true;
    }
    return false;
}

template <typename Emit>
std::string generate(runtime::Context& ctx, const runtime::Tokenizer& tok, runtime::Sampler& sampler,
                     const std::vector<int32_t>& new_tokens, const GenerationOptions& g, Stats& stats, Emit emit) {
    auto t0 = Clock::now();
    sampler.reset_grammar();  // each reply matches the grammar from its root
    auto logits = ctx.decode(new_tokens);
    for (int32_t t : new_tokens) sampler.accept(t);
    stats.n_prompt += static_cast<int>(new_tokens.size());
    stats.prompt_s += seconds_since(t0);

    runtime::StreamingDecoder decoder(tok);
    std::string text;
    t0 = Clock::now();
    for (int i = 0; g.n_predict < 0 || i < g.n_predict; ++i) {
        const int32_t next = sampler.sample(logits);
        // an end-of-generation token ends the text unless --ignore-eos; under a complete grammar it is the only
        // token left, so it ends the text then too
        if (tok.is_eog(next) && (!g.ignore_eos || sampler.grammar_complete())) break;
        sampler.accept_generated(next);
        const std::string piece = decoder.push(next);
        text += piece;
        emit(piece);
        ++stats.n_gen;
        if (contains_stop(text, piece.size(), g.stop)) break;
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

// -v: the prompt as token ids and pieces, and the sampler settings.
void print_tokens(const std::vector<int32_t>& tokens, const GenerationOptions& g) {
    std::fprintf(stderr, "prompt: %zu tokens:", tokens.size());
    for (int32_t t : tokens) std::fprintf(stderr, " %d", t);
    std::fprintf(stderr, "\nseed %lld\n%s\n", g.seed, g.sampling.describe().c_str());
}

std::unique_ptr<runtime::Sampler> make_sampler_ptr(const runtime::SamplerParams& p, const runtime::Context& ctx,
                                                   const runtime::Tokenizer& tok) {
    if (!p.needs_vocabulary()) return std::make_unique<runtime::Sampler>(p, ctx.n_vocab());
    return std::make_unique<runtime::Sampler>(p, ctx.n_vocab(), runtime::SamplerVocab::from_tokenizer(tok));
}

void check_fits(const runtime::Context& ctx, size_t n_tokens) {
    if (n_tokens >= static_cast<size_t>(ctx.n_ctx())) {
        throw runtime::Error("the prompt is " + std::to_string(n_tokens) + " tokens, the context holds " +
                             std::to_string(ctx.n_ctx()) + " (raise -c)");
    }
}



int run_conversation(const CommonOptions& common, const GenerationOptions& gen, const PromptOptions& po);

// Generation and chat take the same options; chat is generation with -cnv.
int run_text(const std::vector<std::string>& args, bool chat) {
    CommonOptions common;
    GenerationOptions gen;
    PromptOptions prompt;
    appcommon::OptionSet opts(
        "gguf-run",
        chat ? "Usage: gguf-run chat -m MODEL [-sys TEXT] [options]\n\n"
               "Reads one user message per line from stdin and answers with the model's chat template.\n"
               "Lines starting with / are commands: /exit, /reset (see docs/run.md)."
             : "Usage: gguf-run [generate] -m MODEL -p PROMPT [-n N] [options]\n"
               "       gguf-run -m MODEL -cnv [-sys TEXT]    chat (as 'gguf-run chat')");
    common.add_to(opts, 0);
    prompt.add_to(opts, chat);
    gen.add_to(opts);
    DraftOptions draft;
    draft.add_to(opts);
    add_unsupported_llama_options(opts);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return 0;
    if (!opts.positional().empty()) {
        throw appcommon::UsageError{"unexpected argument '" + opts.positional().front() + "'" +
                                    (chat ? "" : " (the prompt goes after -p)")};
    }
    if (!prompt.prompt.empty() && !prompt.prompt_file.empty()) throw appcommon::UsageError{"give -p or -f, not both"};
    if (!prompt.system.empty() && !prompt.system_file.empty()) throw appcommon::UsageError{"give -sys or -sysf, not both"};
    if (!prompt.prompt_file.empty()) prompt.prompt = appcommon::read_file(prompt.prompt_file, "-f");
    else if (prompt.escape) prompt.prompt = appcommon::process_escapes(prompt.prompt);
    if (!prompt.system_file.empty()) prompt.system = appcommon::read_file(prompt.system_file, "-sysf");
    else if (prompt.escape) prompt.system = appcommon::process_escapes(prompt.system);
    gen.validate();
    for (auto& s : gen.stop) {
        if (prompt.escape) s = appcommon::process_escapes(s);
    }
    if (!draft.model.empty() && (chat || prompt.conversation)) {
        throw appcommon::UsageError{"--model-draft applies to generation, not to chat mode (yet)"};
    }
    // the last token's logits, or a draft's tokens and the one after them (speculative steps)
    common.n_outputs = draft.model.empty() ? 1 : draft.draft_max + 1;
    if (chat || prompt.conversation) return run_conversation(common, gen, prompt);
    for (const char* o : {"-sys", "-sysf", "-st", "--chat-template", "--chat-template-file", "--chat-template-kwargs", "-rea"}) {
        if (opts.given(o)) throw appcommon::UsageError{std::string(o) + " applies to chat mode: add -cnv or use 'gguf-run chat'"};
    }
    if (!opts.given("-p") && !opts.given("-f")) throw appcommon::UsageError{"no prompt given (-p TEXT or -f FILE)"};

    Loaded l = load(common, true);
    const auto sampler_owner = make_sampler_ptr(gen.params(), *l.context, *l.tokenizer);
    runtime::Sampler& sampler = *sampler_owner;
    const auto tokens = l.tokenizer->encode(prompt.prompt, true, true);
    if (tokens.empty()) throw runtime::Error("the prompt is empty after tokenization");
    check_fits(*l.context, tokens.size());
    if (common.verbose) print_tokens(tokens, gen);
    if (prompt.display_prompt && !common.json) {
        std::fwrite(prompt.prompt.data(), 1, prompt.prompt.size(), stdout);
    }

    Stats stats;
    const auto print_piece = [&](const std::string& piece) {
        if (common.json) return;
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    };
    std::string text;
    SpeculativeStats spec;
    if (draft.model.empty()) {
        text = generate(*l.context, *l.tokenizer, sampler, tokens, gen, stats, print_piece);
    } else {
        const auto draft_model = load_draft(draft, *l.model);
        const auto t0 = Clock::now();
        text = generate_speculative(*l.context, *l.tokenizer, sampler, tokens, gen.n_predict, gen.ignore_eos, gen.stop,
                                    draft.draft_max, gemma4_proposer(*draft_model, *l.context), spec, print_piece);
        stats.n_prompt = static_cast<int>(tokens.size());
        stats.n_gen = spec.generated;
        stats.gen_s = seconds_since(t0);
    }
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
    if (!prompt.no_perf) print_stats(stats);
    if (!draft.model.empty()) {
        std::fprintf(stderr, "draft: %d tokens proposed in %d steps, %d accepted (%.1f%%)\n", spec.drafted, spec.steps,
                     spec.accepted, spec.drafted > 0 ? 100.0 * spec.accepted / spec.drafted : 0.0);
    }
    return 0;
}

int run_conversation(const CommonOptions& common, const GenerationOptions& gen, const PromptOptions& po) {
    ChatPrompt chat = ChatPrompt::from_options(po.chat_template, po.chat_template_file);
    chat.set_kwargs(po.chat_template_kwargs);
    if (po.reasoning != "auto") chat.set_default_kwarg("enable_thinking", appcommon::parse_on_off(po.reasoning));
    Loaded l = load(common, true);
    chat.bind(l.model->metadata().get_string_or("tokenizer.chat_template", ""), *l.tokenizer);
    std::fprintf(stderr, "chat template: %s\n", chat.description().c_str());
    const auto sampler_owner = make_sampler_ptr(gen.params(), *l.context, *l.tokenizer);
    runtime::Sampler& sampler = *sampler_owner;
    std::vector<runtime::ChatMessage> messages;
    if (!po.system.empty()) messages.push_back({"system", po.system});
    std::vector<int32_t> in_context;  // the tokens the KV cache holds, to reuse the shared prefix
    const bool interactive = ::isatty(STDIN_FILENO) == 1;
    Stats stats;
    std::string line = po.prompt;
    bool have_line = !line.empty();
    while (true) {
        if (!have_line) {
            if (interactive) std::fprintf(stderr, "> ");
            if (!std::getline(std::cin, line)) break;
        }
        have_line = false;
        if (line.empty()) continue;
        // Slash commands are for gguf-run, not the model; "//text" sends "/text".
        if (line[0] == '/' && !line.starts_with("//")) {
            const std::string cmd = line.substr(0, line.find(' '));
            if (cmd == "/exit" || cmd == "/quit" || cmd == "/bye") break;
            if (cmd == "/reset" || cmd == "/clear") {
                messages.resize(po.system.empty() ? 0 : 1);
                in_context.clear();
                l.context->truncate(0);
                std::fprintf(stderr, "[conversation cleared]\n");
            } else if (cmd == "/help") {
                std::fprintf(stderr, "/exit, /quit: end the chat; /reset, /clear: forget the conversation (the system "
                                     "prompt stays); //text: send a line starting with /text\n");
            } else {
                std::fprintf(stderr, "unknown command %s (/help lists them; //text sends a line starting with /)\n",
                             cmd.c_str());
            }
            continue;
        }
        if (line.starts_with("//")) line.erase(0, 1);
        messages.push_back({"user", line});
        const std::string prompt = chat.render(messages);
        const auto tokens = l.tokenizer->encode(prompt, true, true);
        check_fits(*l.context, tokens.size());
        if (common.verbose) {
            std::fprintf(stderr, "chat prompt:\n%s\n[end of chat prompt]\n", prompt.c_str());
            print_tokens(tokens, gen);
        }
        size_t keep = 0;
        while (keep < in_context.size() && keep < tokens.size() - 1 && in_context[keep] == tokens[keep]) ++keep;
        // a model with linear-attention layers cannot step back into its state: it re-reads the prompt
        if (!l.context->can_truncate(static_cast<int>(keep))) keep = 0;
        l.context->truncate(static_cast<int>(keep));
        in_context.assign(tokens.begin(), tokens.end());
        const std::vector<int32_t> fresh(tokens.begin() + static_cast<ptrdiff_t>(keep), tokens.end());
        const Stats before = stats;
        const std::string reply = generate(*l.context, *l.tokenizer, sampler, fresh, gen, stats, [&](const std::string& piece) {
            if (common.json) return;
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        });
        if (common.json) {
            // one JSON object per reply, one per line
            appcommon::JsonWriter j(std::cout, false);
            j.begin_object()
                .field("role", "assistant")
                .field("content", reply)
                .field("prompt_tokens", stats.n_prompt - before.n_prompt)
                .field("generated_tokens", stats.n_gen - before.n_gen)
                .end_object();
        } else {
            std::printf("\n");
        }
        std::fflush(stdout);
        // what the cache now holds past the prompt is the reply; re-tokenizing it next turn may differ,
        // which only shortens the reused prefix
        in_context.resize(static_cast<size_t>(l.context->n_past()), -1);
        messages.push_back({"assistant", chat.reply_content(reply)});
        if (po.single_turn) break;
    }
    if (!po.no_perf) print_stats(stats);
    return 0;
}

}  // namespace

int run_generate(const std::vector<std::string>& args) { return run_text(args, false); }

int run_chat(const std::vector<std::string>& args) { return run_text(args, true); }

}  // namespace gguf_run
