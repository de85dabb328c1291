#include "finite_probe.h"

#include <cmath>
#include <vector>

#include "quant/finite.h"

namespace runtime {

bool all_finite(std::span<const float> values) {
    // one pass without branches per value: an Inf or NaN makes the sum of v - v a NaN
    float acc = 0;
    for (float v : values) acc += v - v;
    return acc == 0;
}

bool FiniteProbe::check(std::span<const float> values, int n_tokens, Stage stage, int layer, int pos0) {
    if (found_ || all_finite(values)) return found_;
    const size_t row = values.size() / static_cast<size_t>(n_tokens);
    for (size_t i = 0; i < values.size(); ++i) {
        if (std::isfinite(values[i])) continue;
        found_ = true;
        stage_ = stage;
        layer_ = layer;
        token_index_ = static_cast<int>(i / row);
        position_ = pos0 + token_index_;
        value_ = values[i];
        break;
    }
    return found_;
}

namespace {

const char* value_name(float v) { return std::isnan(v) ? "NaN" : "Inf"; }

// The first non-finite value of a weight (all its rows, every expert), or an empty string.
std::string scan(const Model& model, const Weight& w) {
    if (w.name.empty()) return {};
    const gguf::TensorInfo& info = model.file().tensor(w.name);
    const auto bad = quant::find_non_finite(info.type, model.file().tensor_data(info), w.n_in,
                                            static_cast<uint64_t>(w.n_out) * static_cast<uint64_t>(w.n_mat));
    return bad ? "tensor " + w.name + " holds " + bad->describe() : std::string();
}

std::string first_bad(const Model& model, std::initializer_list<const Weight*> weights) {
    for (const Weight* w : weights) {
        std::string s = scan(model, *w);
        if (!s.empty()) return s;
    }
    return {};
}

}  // namespace

std::string FiniteProbe::describe(const Model& model, std::span<const int32_t> tokens) const {
    if (!found_) return "non-finite logits, but a second pass over the same tokens gave finite values";
    const ModelWeights& w = model.weights();
    std::string where, blame;
    const std::string blk = "blk." + std::to_string(layer_);
    switch (stage_) {
        case Stage::Input: {
            const int32_t token = tokens[static_cast<size_t>(token_index_)];
            where = "in the input embedding of token " + std::to_string(token);
            std::vector<float> row(static_cast<size_t>(w.token_embd.n_in));
            const gguf::TensorInfo& info = model.file().tensor(w.token_embd.name);
            const auto bad = quant::find_non_finite(
                info.type, model.file().tensor_data(info).subspan(static_cast<size_t>(token) * w.token_embd.row_bytes,
                                                                  w.token_embd.row_bytes),
                w.token_embd.n_in, 1);
            if (bad) blame = "tensor token_embd.weight row " + std::to_string(token) + " holds " + bad->describe();
            break;
        }
        case Stage::Attention: {
            const LayerWeights& L = w.layers[static_cast<size_t>(layer_)];
            where = "after " + blk + " attention";
            blame = first_bad(model, {&L.wq, &L.wk, &L.wv, &L.wo});
            break;
        }
        case Stage::FeedForward: {
            const LayerWeights& L = w.layers[static_cast<size_t>(layer_)];
            where = "after " + blk + " feed-forward";
            blame = first_bad(model, {&L.gate_inp, &L.gate_exps, &L.up_exps, &L.down_exps, &L.ffn_gate, &L.ffn_up,
                                      &L.ffn_down});
            break;
        }
        case Stage::Output:
            where = "in the output projection";
            blame = first_bad(model, {&w.output});
            break;
    }
    std::string msg = std::string("non-finite value (") + value_name(value_) + ") first appears " + where +
                      " at position " + std::to_string(position_);
    msg += blame.empty() ? "; the weights it read are finite (the activations overflow)" : ": " + blame;
    return msg;
}

}  // namespace runtime
