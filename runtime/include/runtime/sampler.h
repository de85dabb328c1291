// Choosing the next token from logits: llama.cpp's default chain (repetition penalty, top-k, top-p,
// min-p, temperature, then a seeded draw), or greedy when the temperature is 0.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace runtime {

struct SamplerParams {
    float temperature = 0.8f;  // <= 0: greedy
    int top_k = 40;            // <= 0: all tokens
    float top_p = 0.95f;       // 1: off
    float min_p = 0.05f;       // 0: off
    float repeat_penalty = 1.0f;  // 1: off
    int repeat_last_n = 64;       // how many recent tokens the penalties look at
    // OpenAI-style penalties over the same window, as llama.cpp's: a token seen c times there loses
    // c * frequency_penalty + presence_penalty from its logit. 0: off.
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    uint64_t seed = 0;
};

// Throws runtime::Error naming the first parameter out of range (NaN included); the Sampler checks
// the same, and apps call it before loading a model so that a bad flag fails at once.
void validate_sampler_params(const SamplerParams& params);

class Sampler {
public:
    // Out-of-range parameters (negative temperature, top_p outside (0, 1], ...) throw runtime::Error.
    Sampler(const SamplerParams& params, int n_vocab);

    // Picks a token from one row of logits; allocates nothing.
    int32_t sample(std::span<const float> logits);
    // Records a token of the sequence (prompt or generated) for the repetition penalty.
    void accept(int32_t token);

private:
    struct Candidate {
        float logit;
        int32_t id;
    };
    SamplerParams p_;
    std::vector<Candidate> cand_;
    std::vector<int32_t> recent_;  // ring of the last repeat_last_n tokens
    size_t recent_next_ = 0;
    size_t recent_count_ = 0;
    std::mt19937_64 rng_;
};

}  // namespace runtime
