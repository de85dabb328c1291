// Finding where NaN/Inf first appears in a forward pass. The context checks the logits of every
// decode call (n_vocab floats a token: nothing next to the output projection); when they are not
// finite it runs the same tokens again with a probe that checks the residual stream after the
// input lookup and after every block, then names the stage and scans that stage's weights.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "runtime/model.h"

namespace runtime {

class FiniteProbe {
public:
    enum class Stage { Input, Attention, FeedForward, Output };

    // Checks `values` (n_tokens rows) after `stage` of block `layer`; returns true when they are
    // not all finite, and remembers the first such place.
    bool check(std::span<const float> values, int n_tokens, Stage stage, int layer, int pos0);
    bool found() const { return found_; }

    // "non-finite value (NaN) first appears after blk.3 feed-forward at position 17: tensor
    // blk.3.ffn_down.weight holds NaN at row 5, column 2"
    std::string describe(const Model& model, std::span<const int32_t> tokens) const;

private:
    bool found_ = false;
    Stage stage_ = Stage::Input;
    int layer_ = -1;
    int position_ = 0;
    int token_index_ = 0;
    float value_ = 0;
};

// True when every value is finite.
bool all_finite(std::span<const float> values);

}  // namespace runtime
