#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"

namespace runtime {

void validate_sampler_params(const SamplerParams& p) {
    // written so that NaN fails every test: a NaN temperature would turn every logit into NaN
    if (!(p.temperature >= 0 && std::isfinite(p.temperature))) throw Error("temperature must be a finite number >= 0");
    if (!(p.dynatemp_range >= 0 && std::isfinite(p.dynatemp_range))) throw Error("dynatemp-range must be a finite number >= 0");
    if (!std::isfinite(p.dynatemp_exponent)) throw Error("dynatemp-exp must be a finite number");
    if (!(p.top_p > 0 && p.top_p <= 1)) throw Error("top-p must be in (0, 1]");
    if (!(p.min_p >= 0 && p.min_p <= 1)) throw Error("min-p must be in [0, 1]");
    if (!(p.typical_p > 0 && p.typical_p <= 1)) throw Error("typical-p must be in (0, 1]");
    if (!std::isfinite(p.top_n_sigma)) throw Error("top-n-sigma must be a finite number (<= 0: off)");
    if (!(p.xtc_probability >= 0 && p.xtc_probability <= 1)) throw Error("xtc-probability must be in [0, 1]");
    if (!(p.xtc_threshold >= 0 && p.xtc_threshold <= 1)) throw Error("xtc-threshold must be in [0, 1] (> 0.5: off)");
    if (!(p.repeat_penalty > 0 && std::isfinite(p.repeat_penalty))) throw Error("repeat penalty must be a finite number > 0");
    if (p.repeat_last_n < 0) throw Error("repeat-last-n must be >= 0");
    if (p.min_keep < 0) throw Error("min-keep must be >= 0");
    if (!std::isfinite(p.presence_penalty)) throw Error("presence penalty must be a finite number");
    if (!std::isfinite(p.frequency_penalty)) throw Error("frequency penalty must be a finite number");
    if (!(p.dry_multiplier >= 0 && std::isfinite(p.dry_multiplier))) throw Error("dry-multiplier must be a finite number >= 0");
    if (!(p.dry_base >= 0 && std::isfinite(p.dry_base))) throw Error("dry-base must be a finite number >= 0 (< 1: off)");
    if (p.dry_allowed_length < 0) throw Error("dry-allowed-length must be >= 0");
    if (p.dry_penalty_last_n < 0) throw Error("dry-penalty-last-n must be >= 0");
    if (p.mirostat < 0 || p.mirostat > 2) throw Error("mirostat must be 0 (off), 1 or 2");
    if (!(p.mirostat_tau >= 0 && std::isfinite(p.mirostat_tau))) throw Error("mirostat-ent must be a finite number >= 0");
    if (!(p.mirostat_eta >= 0 && std::isfinite(p.mirostat_eta))) throw Error("mirostat-lr must be a finite number >= 0");
    for (const auto& [id, bias] : p.logit_bias) {
        if (id < 0) throw Error("logit-bias: token id " + std::to_string(id) + " is negative");
        if (std::isnan(bias)) throw Error("logit-bias: the bias of token " + std::to_string(id) + " is NaN");
    }
    if (!p.grammar.empty()) {
        try {
            grammar::Grammar::parse(p.grammar);
        } catch (const grammar::Error& e) {
            throw Error(e.what());
        }
    }
}

SamplerVocab SamplerVocab::from_tokenizer(const Tokenizer& tok) {
    SamplerVocab v;
    const size_t n = tok.n_vocab();
    v.pieces.resize(n);
    v.texts.resize(n);
    v.end_of_generation.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const auto id = static_cast<int32_t>(i);
        const TokenType type = tok.token_type(id);
        // control and unknown tokens are no text (the streamed output leaves them out as well)
        if (type != TokenType::Control && type != TokenType::Unknown) v.pieces[i] = tok.token_to_piece(id);
        v.texts[i] = tok.token_text(id);
        v.end_of_generation[i] = tok.is_eog(id);
    }
    return v;
}

Sampler::Sampler(const SamplerParams& params, int n_vocab) : Sampler(params, n_vocab, SamplerVocab{}) {}

Sampler::Sampler(const SamplerParams& params, int n_vocab, SamplerVocab vocab)
    : p_(params), n_vocab_(static_cast<size_t>(std::max(n_vocab, 0))), vocab_(std::move(vocab)),
      rng_(params.seed), xtc_rng_(params.seed) {
    validate_sampler_params(p_);
    mirostat_mu_ = 2.0f * p_.mirostat_tau;
    cand_.items.reserve(n_vocab_);
    if (p_.dry_multiplier > 0) breakers_ = DryBreakers(p_.dry_sequence_breakers, vocab_.pieces);
    if (!p_.grammar.empty()) {
        if (vocab_.pieces.empty()) throw Error("a grammar needs the model's vocabulary");
        try {
            grammar_ = std::make_unique<grammar::Grammar>(grammar::Grammar::parse(p_.grammar));
            grammar_vocab_ = std::make_unique<grammar::Vocabulary>(vocab_.pieces, vocab_.texts, vocab_.end_of_generation);
            matcher_ = std::make_unique<grammar::Matcher>(*grammar_, *grammar_vocab_);
        } catch (const grammar::Error& e) {
            throw Error(e.what());
        }
    }
}

Sampler::~Sampler() = default;

void Sampler::accept(int32_t token) { history_.push_back(token); }

void Sampler::accept_generated(int32_t token) {
    accept(token);
    if (!matcher_) return;
    try {
        matcher_->accept(token);
    } catch (const grammar::Error& e) {
        throw Error(e.what());
    }
}

void Sampler::reset_grammar() {
    if (matcher_) matcher_->reset();
}

bool Sampler::grammar_complete() const { return matcher_ && matcher_->complete(); }

std::span<const int32_t> Sampler::last(int n) const {
    const size_t k = std::min(history_.size(), static_cast<size_t>(std::max(n, 0)));
    return std::span<const int32_t>(history_).subspan(history_.size() - k);
}

void Sampler::load_candidates(std::span<const float> logits) {
    const size_t n = std::min(logits.size(), n_vocab_);
    cand_.items.resize(n);
    for (size_t i = 0; i < n; ++i) cand_.items[i] = {logits[i], static_cast<int32_t>(i), 0.0f};
    cand_.sorted = false;
    cand_.identity = true;
    for (const auto& [id, bias] : p_.logit_bias) {
        if (static_cast<size_t>(id) < n) cand_.items[static_cast<size_t>(id)].logit += bias;
    }
}

void Sampler::apply_grammar_mask() {
    matcher_->allowed(allowed_);
    const auto end = std::stable_partition(cand_.items.begin(), cand_.items.end(), [this](const Candidate& c) {
        return static_cast<size_t>(c.id) < allowed_.size() && allowed_[static_cast<size_t>(c.id)];
    });
    cand_.items.erase(end, cand_.items.end());
    cand_.identity = false;
    if (cand_.items.empty()) throw Error("grammar: no token of the vocabulary can continue the text here");
}

void Sampler::apply_chain() {
    const auto keep = static_cast<size_t>(p_.min_keep);
    for (SamplerStage stage : p_.order) {
        switch (stage) {
            case SamplerStage::Penalties:
                apply_penalties(cand_, last(p_.repeat_last_n), p_.repeat_penalty, p_.frequency_penalty, p_.presence_penalty);
                break;
            case SamplerStage::Dry:
                if (p_.dry_penalty_last_n > 0) {
                    apply_dry(cand_, last(p_.dry_penalty_last_n), {p_.dry_multiplier, p_.dry_base, p_.dry_allowed_length},
                              breakers_, vocab_.pieces);
                }
                break;
            case SamplerStage::TopNSigma: apply_top_n_sigma(cand_, p_.top_n_sigma); break;
            case SamplerStage::TopK: apply_top_k(cand_, p_.top_k); break;
            case SamplerStage::TypicalP: apply_typical(cand_, p_.typical_p, keep); break;
            case SamplerStage::TopP: apply_top_p(cand_, p_.top_p, keep); break;
            case SamplerStage::MinP: apply_min_p(cand_, p_.min_p, keep); break;
            case SamplerStage::Xtc: apply_xtc(cand_, p_.xtc_probability, p_.xtc_threshold, xtc_rng_, keep); break;
            case SamplerStage::Temperature:
                apply_temperature(cand_, p_.temperature, p_.dynatemp_range, p_.dynatemp_exponent);
                break;
        }
    }
}

// The chain (or mirostat) over the loaded candidates, then the draw.
int32_t Sampler::pick() {
    if (p_.mirostat != 0) {
        // llama.cpp's mirostat chain: (logit bias,) plain temperature, mirostat; no other stage
        apply_temperature(cand_, p_.temperature, 0.0f, 1.0f);
        return p_.mirostat == 1 ? mirostat_v1(cand_, static_cast<int>(n_vocab_), p_.mirostat_tau, p_.mirostat_eta, mirostat_mu_, rng_)
                                : mirostat_v2(cand_, p_.mirostat_tau, p_.mirostat_eta, mirostat_mu_, rng_);
    }
    apply_chain();
    return cand_.items[draw_index(cand_, rng_)].id;
}

int32_t Sampler::sample(std::span<const float> logits) {
    load_candidates(logits);
    if (!matcher_) return pick();
    // As llama.cpp: sample freely and keep the token when the grammar allows it (the common case, one
    // check); otherwise mask the logits with the grammar and sample again.
    const float mu = mirostat_mu_;
    const int32_t id = pick();
    if (matcher_->allows(id)) return id;
    mirostat_mu_ = mu;  // the rejected draw must not move mirostat's target
    load_candidates(logits);
    apply_grammar_mask();
    return pick();
}

std::vector<std::pair<int32_t, float>> Sampler::distribution(std::span<const float> logits) {
    load_candidates(logits);
    if (matcher_) apply_grammar_mask();
    if (p_.mirostat != 0) apply_temperature(cand_, p_.temperature, 0.0f, 1.0f);
    else apply_chain();
    softmax(cand_, true);
    std::vector<std::pair<int32_t, float>> out;
    out.reserve(cand_.items.size());
    for (const Candidate& c : cand_.items) out.push_back({c.id, c.p});
    return out;
}

}  // namespace runtime
