#include "speculative.h"

#include <algorithm>
#include <memory>

#include "runtime/error.h"
#include "runtime/gemma4_draft.h"

void DraftOptions::add_to(appcommon::OptionSet& opts) {
    opts.section("Speculative decoding");
    opts.value({"-md", "--model-draft"}, "FILE",
               "draft model: a gemma4-assistant for a gemma4 model (its multi-token-prediction head)", &model);
    opts.value({"--draft-max", "--draft", "--draft-n"}, "N", "tokens the draft proposes per step (default 4)",
               [this](const std::string& v) { draft_max = appcommon::parse_int(v, 1, 64); });
}

std::unique_ptr<runtime::Model> load_draft(const DraftOptions& d, const runtime::Model& target) {
    auto draft = runtime::Model::load(d.model);
    if (draft->hparams().arch != runtime::Arch::Gemma4Assistant || target.hparams().arch != runtime::Arch::Gemma4) {
        throw runtime::Error("--model-draft: only a gemma4-assistant draft for a gemma4 model is supported (got " +
                             draft->hparams().arch_name + " for " + target.hparams().arch_name + ")");
    }
    if (draft->n_vocab() != target.n_vocab()) {
        throw runtime::Error("--model-draft: the draft's vocabulary (" + std::to_string(draft->n_vocab()) +
                             ") differs from the model's (" + std::to_string(target.n_vocab()) + ")");
    }
    return draft;
}

namespace {

bool ends_with_stop(const std::string& text, size_t fresh, const std::vector<std::string>& stops) {
    for (const auto& s : stops) {
        if (s.empty() || fresh == 0 || text.size() < s.size()) continue;
        const size_t from = text.size() >= fresh + s.size() ? text.size() - fresh - s.size() + 1 : 0;
        if (text.find(s, from) != std::string::npos) return true;
    }
    return false;
}

int32_t argmax(const float* x, int64_t n) { return static_cast<int32_t>(std::max_element(x, x + n) - x); }

}  // namespace

Proposer gemma4_proposer(const runtime::Model& draft, const runtime::Context& ctx) {
    const runtime::Model& target = ctx.model();
    auto head = std::make_shared<runtime::Gemma4Draft>(draft.hparams(), draft.weights(), target.hparams(),
                                                       target.weights(), ctx.n_threads());
    auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(ctx.n_vocab()));
    auto next_h = std::make_shared<std::vector<float>>(static_cast<size_t>(target.hparams().n_embd));
    return [head, logits, next_h, &ctx](int32_t token, int pos, int n_kv, std::vector<float>& h) {
        head->step(token, h.data(), pos, ctx.kv_cache(), n_kv, logits->data(), next_h->data());
        h.swap(*next_h);
        return argmax(logits->data(), static_cast<int64_t>(logits->size()));
    };
}

std::string generate_speculative(runtime::Context& ctx, const runtime::Tokenizer& tok, runtime::Sampler& sampler,
                                 const std::vector<int32_t>& prompt, int n_predict, bool ignore_eos,
                                 const std::vector<std::string>& stop, int draft_max, const Proposer& propose,
                                 SpeculativeStats& stats, const std::function<void(const std::string&)>& emit) {
    const int64_t V = ctx.n_vocab(), H = ctx.model().hparams().n_embd;
    auto logits = ctx.decode(prompt);
    for (int32_t t : prompt) sampler.accept(t);
    std::vector<float> h(ctx.hidden().end() - H, ctx.hidden().end());  // the hidden state that predicted `next`
    int32_t next = sampler.sample(logits);

    runtime::StreamingDecoder decoder(tok);
    std::string text;
    int n_gen = 0;
    std::vector<float> h_draft;
    // emits one sampled token; false when generation ends with it (or before it)
    auto take = [&](int32_t t) {
        if (!ignore_eos && tok.is_eog(t)) return false;
        sampler.accept(t);
        const std::string piece = decoder.push(t);
        text += piece;
        emit(piece);
        ++n_gen;
        if (ends_with_stop(text, piece.size(), stop)) return false;
        return n_predict < 0 || n_gen < n_predict;
    };
    bool go = take(next);
    while (go) {
        const int n_past = ctx.n_past();  // `next` is emitted but not yet in the target's cache
        const int room = ctx.n_ctx() - n_past - 1;
        if (room < 0) {
            std::fprintf(stderr, "\n[context full after %d tokens]\n", n_past);
            break;
        }
        // the draft proposes from `next` and the hidden state that predicted it, reading the target's cache
        const int k = std::min({draft_max, room, n_predict < 0 ? draft_max : n_predict - n_gen});
        std::vector<int32_t> batch{next};
        h_draft = h;
        for (int j = 0; j < k; ++j) batch.push_back(propose(batch.back(), n_past + j, n_past, h_draft));
        // the target checks them all at once: row i predicts the token after batch[i]
        const auto rows = ctx.decode(batch, true);
        const std::vector<float> all(rows.begin(), rows.end());
        const std::vector<float> hidden(ctx.hidden().begin(), ctx.hidden().end());
        ++stats.steps;
        stats.drafted += k;
        int i = 0;
        for (; i <= k; ++i) {
            next = sampler.sample({all.data() + static_cast<size_t>(i) * V, static_cast<size_t>(V)});
            h.assign(hidden.begin() + static_cast<std::ptrdiff_t>(i) * H, hidden.begin() + static_cast<std::ptrdiff_t>(i + 1) * H);
            const bool agrees = i < k && next == batch[static_cast<size_t>(i) + 1];
            if (agrees) ++stats.accepted;
            if (!(go = take(next)) || !agrees) break;
        }
        // keep the cache up to the last token the target agreed with (the one just sampled is not in it)
        ctx.truncate(n_past + std::min(i, k) + 1);
    }
    const std::string rest = decoder.flush();
    text += rest;
    emit(rest);
    stats.generated = n_gen;
    return text;
}
