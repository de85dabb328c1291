// The sampler's stages (runtime/sampler_stages.h). Each keeps llama.cpp's definition and defaults; where
// one differs (a removed token instead of a -inf logit), the result drawn from is the same.
#include "runtime/sampler_stages.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/error.h"

namespace runtime {

namespace {

bool by_logit(const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

// Distinct tokens of `tokens` with their counts, sorted by id (for a binary search by id).
std::vector<std::pair<int32_t, int>> count_tokens(std::span<const int32_t> tokens) {
    std::vector<int32_t> sorted(tokens.begin(), tokens.end());
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::pair<int32_t, int>> out;
    for (int32_t t : sorted) {
        if (!out.empty() && out.back().first == t) ++out.back().second;
        else out.push_back({t, 1});
    }
    return out;
}

// Calls f(candidate, value) for each candidate whose id is in `by_id` (sorted by id).
template <typename T, typename F>
void for_listed(Candidates& c, const std::vector<std::pair<int32_t, T>>& by_id, F f) {
    if (by_id.empty()) return;
    if (c.identity) {
        for (const auto& [id, v] : by_id) {
            if (id >= 0 && static_cast<size_t>(id) < c.items.size()) f(c.items[static_cast<size_t>(id)], v);
        }
        return;
    }
    for (Candidate& cand : c.items) {
        const auto it = std::lower_bound(by_id.begin(), by_id.end(), cand.id,
                                         [](const std::pair<int32_t, T>& e, int32_t id) { return e.first < id; });
        if (it != by_id.end() && it->first == cand.id) f(cand, it->second);
    }
}

// Keeps the items for which keep() holds, in order.
template <typename Keep>
void keep_if(Candidates& c, Keep keep) {
    const auto end = std::stable_partition(c.items.begin(), c.items.end(), keep);
    if (end != c.items.end()) {
        c.items.erase(end, c.items.end());
        c.identity = false;
    }
}

void truncate(Candidates& c, size_t n) {
    if (n < c.items.size()) {
        c.items.resize(n);
        c.identity = false;
    }
}

}  // namespace

void sort_by_logit(Candidates& c) {
    if (c.sorted) return;
    std::sort(c.items.begin(), c.items.end(), by_logit);
    c.sorted = true;
    c.identity = false;
}

void softmax(Candidates& c, bool sort) {
    if (c.items.empty()) return;
    if (sort) sort_by_logit(c);
    float mx = c.items[0].logit;
    for (const Candidate& x : c.items) mx = std::max(mx, x.logit);
    double sum = 0;
    for (Candidate& x : c.items) {
        x.p = std::exp(x.logit - mx);
        sum += x.p;
    }
    for (Candidate& x : c.items) x.p = static_cast<float>(x.p / sum);
}

void apply_penalties(Candidates& c, std::span<const int32_t> window, float repeat, float frequency, float presence) {
    if (window.empty() || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f)) return;
    for_listed(c, count_tokens(window), [&](Candidate& x, int count) {
        x.logit = x.logit > 0 ? x.logit / repeat : x.logit * repeat;
        x.logit -= static_cast<float>(count) * frequency + presence;
    });
    c.sorted = false;
}

void apply_top_k(Candidates& c, int k) {
    if (k <= 0 || c.items.empty()) return;
    const size_t n = std::min(c.items.size(), static_cast<size_t>(k));
    if (!c.sorted) {
        std::partial_sort(c.items.begin(), c.items.begin() + static_cast<ptrdiff_t>(n), c.items.end(), by_logit);
        c.sorted = true;
        c.identity = false;
    }
    truncate(c, n);
}

void apply_top_p(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.items.empty()) return;
    softmax(c, true);
    double cum = 0;
    for (size_t i = 0; i < c.items.size(); ++i) {
        cum += c.items[i].p;
        if (cum >= p && i + 1 >= min_keep) {
            truncate(c, i + 1);
            return;
        }
    }
}

void apply_min_p(Candidates& c, float p, size_t min_keep) {
    if (p <= 0.0f || c.items.empty()) return;
    float mx = c.items[0].logit;
    for (const Candidate& x : c.items) mx = std::max(mx, x.logit);
    // p_i >= p * p_max  <=>  logit_i >= max + log(p)
    const float cut = mx + std::log(p);
    const auto n = static_cast<size_t>(
        std::count_if(c.items.begin(), c.items.end(), [cut](const Candidate& x) { return x.logit >= cut; }));
    if (n >= min_keep) {
        keep_if(c, [cut](const Candidate& x) { return x.logit >= cut; });
    } else {  // too few pass: the min_keep most probable
        sort_by_logit(c);
        truncate(c, min_keep);
    }
}

void apply_typical(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.items.empty()) return;
    softmax(c, true);
    double entropy = 0;
    for (const Candidate& x : c.items) {
        if (x.p > 0) entropy -= x.p * std::log(static_cast<double>(x.p));  // 0 * log 0 counts as 0
    }
    std::vector<float> shifted(c.items.size());
    for (size_t i = 0; i < c.items.size(); ++i) {
        shifted[i] = static_cast<float>(std::fabs(-std::log(static_cast<double>(c.items[i].p)) - entropy));
    }
    std::vector<size_t> order(c.items.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return shifted[a] < shifted[b]; });
    double cum = 0;
    size_t keep = order.size();
    for (size_t i = 0; i < order.size(); ++i) {
        cum += c.items[order[i]].p;
        if (cum > p && i + 1 >= min_keep) {
            keep = i + 1;
            break;
        }
    }
    std::vector<Candidate> kept(keep);
    for (size_t i = 0; i < keep; ++i) kept[i] = c.items[order[i]];
    c.items.swap(kept);
    c.sorted = false;
    c.identity = false;
}

void apply_top_n_sigma(Candidates& c, float n) {
    if (n <= 0.0f || c.items.size() <= 1) return;
    float mx = -INFINITY;
    double sum = 0;
    size_t count = 0;
    for (const Candidate& x : c.items) {
        if (x.logit == -INFINITY) continue;
        mx = std::max(mx, x.logit);
        sum += x.logit;
        ++count;
    }
    if (count == 0) return;
    const double mean = sum / static_cast<double>(count);
    double acc = 0;
    for (const Candidate& x : c.items) {
        if (x.logit != -INFINITY) acc += (x.logit - mean) * (x.logit - mean);
    }
    const float cut = mx - n * static_cast<float>(std::sqrt(acc / static_cast<double>(count)));
    // llama.cpp sets the logits below the cut to -inf; removing them draws from the same distribution
    keep_if(c, [cut](const Candidate& x) { return x.logit >= cut; });
}

void apply_xtc(Candidates& c, float probability, float threshold, std::mt19937_64& rng, size_t min_keep) {
    if (probability <= 0.0f || threshold > 0.5f || c.items.size() < 2) return;
    const float chance = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    if (chance > probability) return;
    softmax(c, true);
    size_t last_above = 0;  // the least probable token with p >= threshold
    for (size_t i = 0; i < c.items.size() && c.items[i].p >= threshold; ++i) last_above = i;
    if (last_above == 0) return;  // fewer than two tokens reach the threshold: nothing is excluded
    if (c.items.size() - last_above < min_keep) return;
    c.items.erase(c.items.begin(), c.items.begin() + static_cast<ptrdiff_t>(last_above));
    c.identity = false;
}

void apply_temperature(Candidates& c, float temp, float range, float exponent) {
    if (c.items.empty()) return;
    if (range > 0.0f) {
        if (c.items.size() <= 1) return;
        const float lo = std::max(0.0f, temp - range), hi = temp + range;
        const double max_entropy = std::log(static_cast<double>(c.items.size()));
        softmax(c, true);
        double entropy = 0;
        for (const Candidate& x : c.items) {
            if (x.p > 0) entropy -= x.p * std::log(static_cast<double>(x.p));
        }
        temp = lo + (hi - lo) * static_cast<float>(std::pow(entropy / max_entropy, exponent));
    }
    if (temp <= 0.0f) {
        const auto best = std::min_element(c.items.begin(), c.items.end(), by_logit);
        const Candidate keep = *best;
        c.items.assign(1, keep);
        c.sorted = true;
        c.identity = false;
        return;
    }
    for (Candidate& x : c.items) x.logit /= temp;
}

DryBreakers::DryBreakers(std::vector<std::string> breakers, std::span<const std::string> pieces)
    : strings(std::move(breakers)) {
    std::erase_if(strings, [](const std::string& s) { return s.empty(); });
    single_token.assign(pieces.size(), false);
    for (size_t t = 0; t < pieces.size(); ++t) {
        for (const auto& s : strings) {
            if (pieces[t].find(s) != std::string::npos) {
                single_token[t] = true;
                break;
            }
        }
    }
}

void apply_dry(Candidates& c, std::span<const int32_t> w, const DryParams& params, const DryBreakers& breakers,
               std::span<const std::string> pieces) {
    if (params.multiplier == 0.0f || params.base < 1.0f) return;
    const int n = static_cast<int>(w.size());
    if (n <= params.allowed_length) return;

    // A repeat may not reach back past a sequence breaker: limit = tokens after the one where the last
    // breaker occurrence in the window's text ends (the text, so a breaker split across tokens counts).
    int limit = n;
    if (!breakers.strings.empty() && !pieces.empty()) {
        std::string text;
        std::vector<size_t> ends(static_cast<size_t>(n));
        for (int j = 0; j < n; ++j) {
            const int32_t t = w[static_cast<size_t>(j)];
            if (t >= 0 && static_cast<size_t>(t) < pieces.size()) text += pieces[static_cast<size_t>(t)];
            ends[static_cast<size_t>(j)] = text.size();
        }
        size_t last_end = 0;  // one past the last byte of the last breaker occurrence; 0: none
        for (const auto& b : breakers.strings) {
            const size_t at = text.rfind(b);
            if (at != std::string::npos) last_end = std::max(last_end, at + b.size());
        }
        if (last_end > 0) {
            const int j = static_cast<int>(std::lower_bound(ends.begin(), ends.end(), last_end) - ends.begin());
            limit = n - 1 - j;
        }
    }
    if (limit < params.allowed_length) return;

    // z[k]: length of the longest common prefix of the reversed window and its suffix from k, i.e. how far
    // the tokens ending at position n-1-k repeat the tokens ending the window (Z-algorithm, linear).
    std::vector<int> z(static_cast<size_t>(n), 0);
    const auto r = [&](int i) { return w[static_cast<size_t>(n - 1 - i)]; };
    for (int k = 1, left = 0, right = 0; k < n; ++k) {
        int len = 0;
        if (k < right) len = std::min(right - k, z[static_cast<size_t>(k - left)]);
        while (k + len < n && r(len) == r(k + len)) ++len;
        z[static_cast<size_t>(k)] = len;
        if (k + len > right) {
            left = k;
            right = k + len;
        }
    }
    // the token after a repeat of length >= allowed_length would extend it
    std::vector<std::pair<int32_t, int>> extend;
    for (int k = 1; k < n; ++k) {
        const int len = std::min(z[static_cast<size_t>(k)], limit);
        if (len >= params.allowed_length) extend.push_back({w[static_cast<size_t>(n - k)], len});
    }
    if (extend.empty()) return;
    std::sort(extend.begin(), extend.end());
    std::vector<std::pair<int32_t, int>> longest;  // per token, the longest repeat it would extend
    for (const auto& e : extend) {
        if (!longest.empty() && longest.back().first == e.first) longest.back().second = e.second;
        else longest.push_back(e);
    }
    // base^exponent stays below FLT_MAX
    const int max_exponent = params.base > 1.000001f ? static_cast<int>(88.7228391f / std::log(params.base)) : 0;
    for_listed(c, longest, [&](Candidate& x, int len) {
        if (static_cast<size_t>(x.id) < breakers.single_token.size() && breakers.single_token[static_cast<size_t>(x.id)]) {
            return;
        }
        int e = len - params.allowed_length;
        if (max_exponent > 0) e = std::min(e, max_exponent);
        x.logit -= params.multiplier * std::pow(params.base, static_cast<float>(e));
    });
    c.sorted = false;
}

size_t draw_index(Candidates& c, std::mt19937_64& rng) {
    if (c.items.empty()) throw Error("sampler: no candidate token left");
    float mx = -INFINITY;
    for (const Candidate& x : c.items) mx = std::max(mx, x.logit);
    if (!(mx > -INFINITY)) throw Error("sampler: every candidate token has probability 0 (a logit bias of -inf?)");
    double total = 0;
    for (const Candidate& x : c.items) total += std::exp(static_cast<double>(x.logit - mx));
    double r = std::uniform_real_distribution<double>(0.0, total)(rng);
    for (size_t i = 0; i < c.items.size(); ++i) {
        r -= std::exp(static_cast<double>(c.items[i].logit - mx));
        if (r <= 0) return i;
    }
    return c.items.size() - 1;
}

namespace {

int32_t draw_and_adapt(Candidates& c, float tau, float eta, float& mu, std::mt19937_64& rng) {
    softmax(c, true);
    const size_t i = draw_index(c, rng);
    const float surprise = -std::log2(c.items[i].p);
    mu -= eta * (surprise - tau);
    return c.items[i].id;
}

}  // namespace

int32_t mirostat_v1(Candidates& c, int n_vocab, float tau, float eta, float& mu, std::mt19937_64& rng) {
    softmax(c, true);
    if (c.items.size() > 1) {
        // least-squares fit of the Zipf exponent s over the m = 100 most probable tokens
        constexpr size_t m = 100;
        double sum_tb = 0, sum_tt = 0;
        for (size_t i = 0; i + 1 < m && i + 1 < c.items.size(); ++i) {
            const double t = std::log((i + 2.0) / (i + 1.0));
            const double b = std::log(static_cast<double>(c.items[i].p) / c.items[i + 1].p);
            sum_tb += t * b;
            sum_tt += t * t;
        }
        const double s = sum_tb / sum_tt;
        const double eps = s - 1;
        const double k = std::pow(eps * std::pow(2.0, mu) / (1 - std::pow(static_cast<double>(n_vocab), -eps)), 1 / s);
        // a NaN or huge k (a flat distribution) keeps everything, as int(k) would in practice
        const double kk = std::isfinite(k) ? std::clamp(k, 1.0, static_cast<double>(c.items.size())) : c.items.size();
        truncate(c, static_cast<size_t>(kk));
    }
    return draw_and_adapt(c, tau, eta, mu, rng);
}

int32_t mirostat_v2(Candidates& c, float tau, float eta, float& mu, std::mt19937_64& rng) {
    softmax(c, true);
    size_t keep = 0;
    while (keep < c.items.size() && -std::log2(c.items[keep].p) <= mu) ++keep;
    truncate(c, std::max<size_t>(keep, 1));
    return draw_and_adapt(c, tau, eta, mu, rng);
}

}  // namespace runtime
