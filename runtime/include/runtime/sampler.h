// Choosing the next token from logits with llama.cpp's samplers and their semantics: logit bias, then a
// chain in a configurable order (penalties, DRY, top-n-sigma, top-k, typical-p, top-p, min-p, XTC,
// temperature with the dynamic range) ending in a seeded draw, or mirostat v1/v2 instead of the chain;
// optionally constrained by a GBNF grammar (libgrammar).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "runtime/sampler_stages.h"

namespace grammar {
class Grammar;
class Matcher;
class Vocabulary;
}  // namespace grammar

namespace runtime {

class Tokenizer;

// The stages a chain can hold; --samplers names them (sampler_order_from_names).
enum class SamplerStage { Penalties, Dry, TopNSigma, TopK, TypicalP, TopP, MinP, Xtc, Temperature };

// llama.cpp's default order: penalties, dry, top_n_sigma, top_k, typ_p, top_p, min_p, xtc, temperature.
std::vector<SamplerStage> default_sampler_order();
// "--samplers" (names separated by ';' or ',': llama.cpp's names and aliases, any case) and
// "--sampler-seq" (one letter per stage, e.g. "edskypmxt"); an unknown name throws runtime::Error naming it.
std::vector<SamplerStage> sampler_order_from_names(const std::string& names);
std::vector<SamplerStage> sampler_order_from_letters(const std::string& letters);
std::string sampler_order_to_string(const std::vector<SamplerStage>& order);

struct SamplerParams {
    float temperature = 0.8f;  // <= 0: greedy
    float dynatemp_range = 0.0f;     // > 0: temperature between temp -/+ range, by the normalised entropy
    float dynatemp_exponent = 1.0f;
    int top_k = 40;            // <= 0: all tokens
    float top_p = 0.95f;       // 1: off
    float min_p = 0.05f;       // 0: off
    float typical_p = 1.0f;    // 1: off
    int min_keep = 0;          // top-p, min-p, typical-p and XTC keep at least this many tokens
    float top_n_sigma = -1.0f; // <= 0: off
    float xtc_probability = 0.0f;  // 0: off
    float xtc_threshold = 0.1f;    // > 0.5: off
    float repeat_penalty = 1.0f;  // 1: off
    int repeat_last_n = 64;       // how many recent tokens the penalties look at
    // OpenAI-style penalties over the same window, as llama.cpp's: a token seen c times there loses
    // c * frequency_penalty + presence_penalty from its logit. 0: off.
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    // DRY ("don't repeat yourself"): a token that would extend a repeat of n >= allowed_length tokens
    // found in the last dry_penalty_last_n tokens loses multiplier * base^(n - allowed_length).
    float dry_multiplier = 0.0f;  // 0: off
    float dry_base = 1.75f;
    int dry_allowed_length = 2;
    int dry_penalty_last_n = 64;  // 0: off
    std::vector<std::string> dry_sequence_breakers{"\n", ":", "\"", "*"};
    int mirostat = 0;  // 1, 2: mirostat v1 / v2 replace the chain
    float mirostat_tau = 5.0f;
    float mirostat_eta = 0.1f;
    std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit before anything else
    std::vector<SamplerStage> order = default_sampler_order();
    std::string grammar;  // GBNF source; empty: unconstrained
    uint64_t seed = 0;

    // Whether the sampler needs the vocabulary's text (a grammar, DRY's sequence breakers): without, the
    // caller can skip building SamplerVocab (a few MB for a 150k-token vocabulary).
    bool needs_vocabulary() const { return !grammar.empty() || (dry_multiplier > 0 && !dry_sequence_breakers.empty()); }
};

// Throws runtime::Error naming the first parameter out of range (NaN included) or a grammar that does
// not parse; the Sampler checks the same, and apps call it before loading a model so that a bad flag
// fails at once.
void validate_sampler_params(const SamplerParams& params);

// What the sampler needs to know of the vocabulary for DRY's sequence breakers and for a grammar:
// each token's bytes (empty for control and unknown tokens, which a grammar never accepts) and which
// tokens end generation (allowed by a grammar only where the text may end).
struct SamplerVocab {
    std::vector<std::string> pieces;
    std::vector<std::string> texts;  // as stored in the vocabulary: a grammar's <text> token references
    std::vector<bool> end_of_generation;
    static SamplerVocab from_tokenizer(const Tokenizer& tokenizer);
};

class Sampler {
public:
    // Out-of-range parameters (negative temperature, top_p outside (0, 1], ...) throw runtime::Error.
    // Without a vocabulary DRY has no sequence breakers and a grammar cannot be used.
    Sampler(const SamplerParams& params, int n_vocab);
    Sampler(const SamplerParams& params, int n_vocab, SamplerVocab vocab);
    ~Sampler();
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;

    // Picks a token from one row of logits. Throws runtime::Error when a grammar allows no token.
    int32_t sample(std::span<const float> logits);
    // Records a token of the sequence (prompt or generated) for the penalties and DRY.
    void accept(int32_t token);
    // Records a generated token: as accept(), and advances the grammar past it.
    void accept_generated(int32_t token);
    // The grammar starts again from its root (each reply of a chat is matched on its own).
    void reset_grammar();
    // Whether the grammar has matched a complete text (no grammar: false).
    bool grammar_complete() const;
    // The probabilities the final draw would use for these logits (id, p), most probable first;
    // runs the chain (so XTC's coin is tossed). For tests and -v.
    std::vector<std::pair<int32_t, float>> distribution(std::span<const float> logits);

private:
    void load_candidates(std::span<const float> logits);
    void apply_chain();
    void apply_grammar_mask();
    int32_t pick();
    std::span<const int32_t> last(int n) const;

    SamplerParams p_;
    size_t n_vocab_;
    SamplerVocab vocab_;
    Candidates cand_;
    std::vector<int32_t> history_;  // every accepted token, for the penalties' and DRY's windows
    DryBreakers breakers_;
    std::vector<char> allowed_;
    float mirostat_mu_ = 0;
    std::mt19937_64 rng_, xtc_rng_;
    std::unique_ptr<grammar::Grammar> grammar_;
    std::unique_ptr<grammar::Vocabulary> grammar_vocab_;
    std::unique_ptr<grammar::Matcher> matcher_;
};

}  // namespace runtime
