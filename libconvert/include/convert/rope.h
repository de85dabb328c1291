// RoPE settings from config.json, wherever the transformers version put them (top-level
// rope_theta and rope_scaling, or the newer rope_parameters), and llama3-style frequency factors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convert/hf_config.h"

namespace convert {

struct RopeConfig {
    std::optional<double> theta;
    std::string scaling_type;  // "" or "default" when unscaled; "linear", "yarn", "llama3", ...
    std::optional<double> factor;
    std::optional<int64_t> original_context;
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    // YaRN's optional settings, written to the GGUF when present (as llama.cpp does)
    std::optional<double> extrapolation_factor, attention_factor, beta_fast, beta_slow;
};

RopeConfig read_rope_config(const HfConfig& hparams);

// llama.cpp's rope_freqs.weight for rope_type llama3: one factor per rotated pair, computed in
// float32 step by step as PyTorch does.
std::vector<float> llama3_rope_factors(const RopeConfig& rope, int64_t head_dim);

}  // namespace convert
