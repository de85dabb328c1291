// The sampler's stages as functions over a candidate list, each with llama.cpp's semantics (see
// docs/run.md#samplers). They are public so that tests can check each against hand-computed results.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace runtime {

struct Candidate {
    float logit;
    int32_t id;
    float p;  // filled by softmax()
};

struct Candidates {
    std::vector<Candidate> items;
    bool sorted = false;    // by logit, descending (ties: lower id first)
    bool identity = false;  // items[i].id == i for every i: a token is found by its id without a search
};

// p = softmax(logit) over the current items; sorts first when asked.
void softmax(Candidates& c, bool sort);
void sort_by_logit(Candidates& c);

// Repetition (divides a positive logit, multiplies a negative one), frequency (per occurrence) and
// presence penalties for the tokens of `window`, each distinct token once.
void apply_penalties(Candidates& c, std::span<const int32_t> window, float repeat, float frequency, float presence);
// Keeps the k largest (k <= 0: all).
void apply_top_k(Candidates& c, int k);
// min_keep (llama.cpp's --min-keep): top-p, min-p, typical-p and XTC leave at least this many tokens.
// Keeps the most probable tokens until their probabilities sum to at least p (p >= 1: off).
void apply_top_p(Candidates& c, float p, size_t min_keep = 0);
// Keeps the tokens with probability >= p times the largest (p <= 0: off).
void apply_min_p(Candidates& c, float p, size_t min_keep = 0);
// Locally typical sampling: orders tokens by |-log p - entropy| and keeps them until their probabilities
// sum to more than p (p >= 1: off).
void apply_typical(Candidates& c, float p, size_t min_keep = 0);
// Keeps the tokens whose logit is within n standard deviations (of the finite logits) of the largest
// (n <= 0: off).
void apply_top_n_sigma(Candidates& c, float n);
// Exclude Top Choices: with the given probability, removes every token with p >= threshold but the least
// probable of them, when at least two qualify (probability <= 0 or threshold > 0.5: off).
void apply_xtc(Candidates& c, float probability, float threshold, std::mt19937_64& rng, size_t min_keep = 0);
// Divides the logits by the temperature; temp <= 0 keeps only the largest. With range > 0 the temperature
// is temp - range + 2 * range * (entropy / max entropy)^exponent (clamped at 0 below).
void apply_temperature(Candidates& c, float temp, float range, float exponent);

// DRY: the sequence breakers resolved against a vocabulary.
struct DryBreakers {
    std::vector<std::string> strings;
    std::vector<bool> single_token;  // per token id: its text holds a whole breaker (never penalised)
    DryBreakers() = default;
    DryBreakers(std::vector<std::string> breakers, std::span<const std::string> pieces);
};
struct DryParams {
    float multiplier = 0.0f;
    float base = 1.75f;
    int allowed_length = 2;
};
// Penalises each candidate that would extend a repeat (of at least allowed_length tokens) of the end of
// `window`; a repeat never reaches back past the last sequence breaker in the window's text.
// `pieces` are the tokens' bytes (may be empty: no breakers then).
void apply_dry(Candidates& c, std::span<const int32_t> window, const DryParams& params, const DryBreakers& breakers,
               std::span<const std::string> pieces);

// Draws one token in proportion to exp(logit); returns its index in c.items.
size_t draw_index(Candidates& c, std::mt19937_64& rng);
// Mirostat (Basu et al.): v1 estimates the Zipf exponent from the m = 100 most probable tokens and keeps
// the top k that give surprise mu; v2 keeps the tokens whose surprise -log2 p is at most mu. Both draw,
// then move mu by eta * (tau - observed surprise). Return the chosen id.
int32_t mirostat_v1(Candidates& c, int n_vocab, float tau, float eta, float& mu, std::mt19937_64& rng);
int32_t mirostat_v2(Candidates& c, float tau, float eta, float& mu, std::mt19937_64& rng);

}  // namespace runtime
