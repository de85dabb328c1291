// Speculative decoding with a draft head (-md): a gemma4-assistant proposes tokens from the target's own
// hidden state and KV cache, the target checks them in one batch, and every emitted token is the
// target's own sample (so greedy output equals plain decoding's).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "appcommon/options.h"
#include "runtime/context.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"

struct DraftOptions {
    std::string model;  // -md FILE
    int draft_max = 4;  // tokens proposed per step
    void add_to(appcommon::OptionSet& opts);
};

struct SpeculativeStats {
    int drafted = 0, accepted = 0, steps = 0, generated = 0;
};

// Loads the draft and checks it belongs to the target; a mismatch throws runtime::Error.
std::unique_ptr<runtime::Model> load_draft(const DraftOptions& d, const runtime::Model& target);

// A draft's step: the token after `token` (at position `pos`), given in `h` the target-width state that
// predicted `token`; leaves in `h` the state for the next step. `n_kv`: the target cache's positions.
using Proposer = std::function<int32_t(int32_t token, int pos, int n_kv, std::vector<float>& h)>;

// A gemma4-assistant's greedy proposals against ctx's cache (both must outlive the proposer).
Proposer gemma4_proposer(const runtime::Model& draft, const runtime::Context& ctx);

// Decodes `prompt` then generates up to n_predict tokens (< 0: until EOG or a full context), stopping
// at EOG (unless ignore_eos) or a stop string; `emit` gets each piece of text. Each step the proposer
// drafts up to draft_max tokens, the target decodes them in one batch, and tokens are sampled from the
// target's rows in order while they agree with the draft (the first that does not is the correction).
std::string generate_speculative(runtime::Context& ctx, const runtime::Tokenizer& tok, runtime::Sampler& sampler,
                                 const std::vector<int32_t>& prompt, int n_predict, bool ignore_eos,
                                 const std::vector<std::string>& stop, int draft_max, const Proposer& propose,
                                 SpeculativeStats& stats, const std::function<void(const std::string&)>& emit);
