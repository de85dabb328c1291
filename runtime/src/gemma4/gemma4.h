// Gemma 4 (llama.cpp's `gemma4` and its `gemma4-assistant` draft head) on the CPU: the hyper-parameter
// reader, the tensor binding and the forward pass, kept apart from the generic executor path because
// its layers differ in head size, KV-head count and RoPE, and its blocks add post-norms, a dense MLP
// beside the experts, a router scale and per-layer output scalars.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gguf/metadata.h"
#include "runtime/hparams.h"
#include "runtime/gemma4_draft.h"
#include "runtime/kv_cache.h"
#include "runtime/weights.h"

namespace runtime {

class Binder;
class Model;

// Fills the gemma4 fields of `hp` (architecture already set) from the metadata.
HParams read_gemma4(const gguf::Metadata& meta, HParams hp);

// Binds a gemma4 / gemma4-assistant model's tensors by llama.cpp's names (model_layout's contract).
bool bind_gemma4(const HParams& hp, const gguf::Metadata& metadata, Binder& b, ModelWeights& w);

// The forward pass of a gemma4 model over the context's KV cache (one row per position of every
// layer, wide enough for either kind of layer: see Gemma4HParams).
class Gemma4Forward {
public:
    Gemma4Forward(const HParams& hp, const ModelWeights& w, const KvCache& kv, int n_batch, int n_threads);

    // Runs tokens at positions pos0.. (n <= n_batch) and writes the logits of rows [first, n) to `logits`
    // (n_vocab each) when it is not null. `hidden`, when not null, receives the final-norm hidden
    // state of those rows (n_embd each): what the assistant head reads.
    void forward(const int32_t* tokens, int n, int pos0, KvCache& kv, int first, float* logits, float* hidden);

private:
    void attention(int il, int n, int pos0, KvCache& kv);
    void feed_forward(int il, int n);
    void experts(int il, int n);

    const HParams& hp_;
    const ModelWeights& w_;
    int n_batch_, n_threads_;
    std::vector<double> inv_freq_swa_, inv_freq_full_;
    // scratch, n_batch rows each
    std::vector<float> x_, xn_, q_, k_, v_, attn_, proj_, h_, gate_, up_, mlp_, moe_, logits_;
    std::vector<float> keys_, values_;  // one layer's cached rows in f32
    std::vector<int32_t> ids_;
    std::vector<float> weights_;
};

// Shared by the two: RoPE angles per rotated pair (whole heads, NeoX pairing), the full layers' with
// rope_freqs' factors (1e30 past the proportional part, i.e. unrotated).
std::vector<double> gemma4_inv_freq(uint32_t n_rot, float base, const std::vector<float>& factors);

}  // namespace runtime
