// The gemma4-assistant draft head (Gemma 4's multi-token-prediction assistant) run against a gemma4
// target's context: one draft step at a time (runtime/src/gemma4/draft_gemma4.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/hparams.h"
#include "runtime/kv_cache.h"
#include "runtime/weights.h"

namespace runtime {

// gemma4-assistant: the multi-token-prediction draft. Each of its layers has queries only and
// attends to the target's KV cache: its sliding layers to the target's last sliding layer, its full
// layers to the target's last full layer (transformers' shared_kv_states), over the target's
// positions [0, n_kv) (sliding: the last n_swa + 1 of them, as transformers' assistant masks).
class Gemma4Draft {
public:
    Gemma4Draft(const HParams& hp, const ModelWeights& w, const HParams& target_hp, const ModelWeights& target_w,
                int n_threads);

    // One draft step: `token` embedded by the target's table (times sqrt(target n_embd)) joined with the
    // target's final-norm hidden state `h` (target n_embd), at position `pos`, attending to the target's
    // cache positions [0, n_kv). Writes n_vocab logits and the projected state (target n_embd) that
    // feeds the next step as `h`.
    void step(int32_t token, const float* h, int pos, const KvCache& target_kv, int n_kv, float* logits,
              float* h_next);

private:
    const HParams& hp_;
    const ModelWeights& w_;
    const HParams& thp_;
    const ModelWeights& tw_;
    int n_threads_;
    int target_layer_swa_ = -1, target_layer_full_ = -1;
    std::vector<double> inv_freq_swa_, inv_freq_full_;
    std::vector<float> keys_, values_;
};

}  // namespace runtime
