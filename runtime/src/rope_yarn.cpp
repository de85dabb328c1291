#include "rope_yarn.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace runtime {

namespace {

// The (fractional) pair index whose wavelength makes `rotations` turns over the original context.
double correction_dim(double rotations, double n_rot, double base, double n_ctx_orig) {
    return n_rot * std::log(n_ctx_orig / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

}  // namespace

std::vector<double> yarn_inv_freq(const HParams& hp) {
    const double n_rot = hp.n_rot, base = hp.rope_freq_base, scale = hp.rope_freq_scale;
    double low = correction_dim(hp.yarn.beta_fast, n_rot, base, hp.yarn.n_ctx_orig);
    double high = correction_dim(hp.yarn.beta_slow, n_rot, base, hp.yarn.n_ctx_orig);
    if (hp.yarn.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, n_rot - 1.0);
    const double width = std::max(high - low, 0.001);  // a ramp of one point would divide by zero
    std::vector<double> out;
    for (size_t i = 0; i < hp.n_rot / 2; ++i) {
        const double extrapolated = std::pow(base, -2.0 * static_cast<double>(i) / n_rot);
        const double interpolated = extrapolated * scale;
        // 1 below `low` (fast-turning pairs keep their frequency), 0 above `high` (slow ones are scaled)
        const double keep = 1.0 - std::clamp((static_cast<double>(i) - low) / width, 0.0, 1.0);
        out.push_back(interpolated * (1.0 - keep) + extrapolated * keep);
    }
    return out;
}

}  // namespace runtime
