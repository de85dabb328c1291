#include "convert/rope.h"

#include <cmath>
#include <numbers>

#include "convert/error.h"

namespace convert {

RopeConfig read_rope_config(const HfConfig& h) {
    RopeConfig r;
    r.theta = h.find_number({"rope_theta"});
    const json::Value* params = h.find({"rope_parameters", "rope_scaling"});
    if (params && !params->is_object())
        throw Error(h.source() + ": rope_parameters / rope_scaling is not an object");
    if (!params) return r;
    const auto number = [&](std::string_view key) -> std::optional<double> {
        const json::Value* v = params->find(key);
        if (!v || v->is_null()) return std::nullopt;
        if (!v->is_number()) throw Error(h.source() + ": rope setting \"" + std::string(key) + "\" is not a number");
        return v->as_double();
    };
    if (!r.theta) r.theta = number("rope_theta");
    const json::Value* type = params->find("rope_type");
    if (!type) type = params->find("type");
    if (type && type->is_string()) r.scaling_type = type->as_string();
    r.factor = number("factor");
    if (auto o = number("original_max_position_embeddings")) r.original_context = static_cast<int64_t>(*o);
    else r.original_context = h.find_int({"original_max_position_embeddings"});
    r.low_freq_factor = number("low_freq_factor").value_or(1.0);
    r.high_freq_factor = number("high_freq_factor").value_or(4.0);
    r.extrapolation_factor = number("extrapolation_factor");
    r.attention_factor = number("attention_factor");
    if (!r.attention_factor) r.attention_factor = number("attn_factor");
    r.beta_fast = number("beta_fast");
    r.beta_slow = number("beta_slow");
    return r;
}

std::vector<float> llama3_rope_factors(const RopeConfig& rope, int64_t head_dim) {
    const float base = static_cast<float>(rope.theta.value_or(10000.0));
    const float factor = static_cast<float>(rope.factor.value_or(8.0));
    const double old_context = static_cast<double>(rope.original_context.value_or(8192));
    const double low_wavelen = old_context / rope.low_freq_factor;
    const double high_wavelen = old_context / rope.high_freq_factor;
    std::vector<float> out;
    for (int64_t i = 0; i < head_dim; i += 2) {
        // Each step rounds to float32 like the tensor expression it mirrors; Python scalars
        // meet a float32 tensor as float32.
        const float exponent = static_cast<float>(i) / static_cast<float>(head_dim);
        const float freq = 1.0f / std::pow(base, exponent);
        const float wavelen = static_cast<float>(2 * std::numbers::pi) / freq;
        if (wavelen < static_cast<float>(high_wavelen)) {
            out.push_back(1.0f);
        } else if (wavelen > static_cast<float>(low_wavelen)) {
            out.push_back(factor);
        } else {
            float smooth = static_cast<float>(old_context) / wavelen - static_cast<float>(rope.low_freq_factor);
            smooth = smooth / static_cast<float>(rope.high_freq_factor - rope.low_freq_factor);
            out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
        }
    }
    return out;
}

}  // namespace convert
