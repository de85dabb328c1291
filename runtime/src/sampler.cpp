#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace runtime {

void validate_sampler_params(const SamplerParams& p) {
    // written so that NaN fails every test: a NaN temperature would turn every logit into NaN
    if (!(p.temperature >= 0 && std::isfinite(p.temperature))) throw Error("temperature must be a finite number >= 0");
    if (!(p.top_p > 0 && p.top_p <= 1)) throw Error("top-p must be in (0, 1]");
    if (!(p.min_p >= 0 && p.min_p <= 1)) throw Error("min-p must be in [0, 1]");
    if (!(p.repeat_penalty > 0 && std::isfinite(p.repeat_penalty))) throw Error("repeat penalty must be a finite number > 0");
    if (p.repeat_last_n < 0) throw Error("repeat-last-n must be >= 0");
    if (!std::isfinite(p.presence_penalty)) throw Error("presence penalty must be a finite number");
    if (!std::isfinite(p.frequency_penalty)) throw Error("frequency penalty must be a finite number");
}

Sampler::Sampler(const SamplerParams& params, int n_vocab)
    : p_(params), cand_(static_cast<size_t>(n_vocab)), rng_(params.seed) {
    validate_sampler_params(p_);
    recent_.assign(static_cast<size_t>(p_.repeat_last_n), -1);
}

void Sampler::accept(int32_t token) {
    if (recent_.empty()) return;
    recent_[recent_next_] = token;
    recent_next_ = (recent_next_ + 1) % recent_.size();
    recent_count_ = std::min(recent_count_ + 1, recent_.size());
}

int32_t Sampler::sample(std::span<const float> logits) {
    const size_t n = std::min(logits.size(), cand_.size());
    for (size_t i = 0; i < n; ++i) cand_[i] = {logits[i], static_cast<int32_t>(i)};
    // the penalties apply once per distinct token, as llama.cpp's: the repetition penalty divides positive
    // logits and multiplies negative ones, then c * frequency + presence is subtracted
    if (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) {
        for (size_t k = 0; k < recent_count_; ++k) {
            const int32_t t = recent_[k];
            if (t < 0 || static_cast<size_t>(t) >= n) continue;
            bool seen = false;
            for (size_t j = 0; j < k; ++j) seen |= recent_[j] == t;
            if (seen) continue;
            size_t count = 0;
            for (size_t j = k; j < recent_count_; ++j) count += recent_[j] == t;
            float& l = cand_[static_cast<size_t>(t)].logit;
            l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
            l -= static_cast<float>(count) * p_.frequency_penalty + p_.presence_penalty;
        }
    }
    const auto by_logit = [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    if (p_.temperature <= 0) return std::min_element(cand_.begin(), cand_.begin() + static_cast<ptrdiff_t>(n), by_logit)->id;

    size_t k = p_.top_k > 0 ? std::min(n, static_cast<size_t>(p_.top_k)) : n;
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<ptrdiff_t>(k), cand_.begin() + static_cast<ptrdiff_t>(n), by_logit);

    // top-p and min-p on the softmax of the (untempered) logits, sorted descending
    const float mx = cand_[0].logit;
    double sum = 0;
    for (size_t i = 0; i < k; ++i) sum += std::exp(static_cast<double>(cand_[i].logit - mx));
    if (p_.top_p < 1.0f) {
        double cum = 0;
        for (size_t i = 0; i < k; ++i) {
            cum += std::exp(static_cast<double>(cand_[i].logit - mx)) / sum;
            if (cum >= p_.top_p) {
                k = i + 1;
                break;
            }
        }
    }
    if (p_.min_p > 0.0f) {
        // p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p)
        const float cut = mx + std::log(p_.min_p);
        size_t keep = 1;
        while (keep < k && cand_[keep].logit >= cut) ++keep;
        k = keep;
    }
    double total = 0;
    for (size_t i = 0; i < k; ++i) total += std::exp(static_cast<double>(cand_[i].logit - mx) / p_.temperature);
    double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
    for (size_t i = 0; i < k; ++i) {
        r -= std::exp(static_cast<double>(cand_[i].logit - mx) / p_.temperature);
        if (r <= 0) return cand_[i].id;
    }
    return cand_[k - 1].id;
}

}  // namespace runtime
