// The recurrent state of a sequence's linear-attention (Gated DeltaNet) layers, qwen35moe's: what the
// KV cache is to attention. Per recurrent layer, the last d_conv - 1 inputs of the causal convolution
// and the delta rule's state matrices, in f32, in the memory of the device the layer runs on. Unlike
// the KV cache it has no positions: it is the state after the last token decoded, so a context can
// continue it or start over, never step back.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "runtime/backend.h"
#include "runtime/hparams.h"

namespace runtime {

class RecurrentState {
public:
    // `layer_backends[il]` runs layer il; only recurrent layers get state.
    RecurrentState(const HParams& hp, const std::vector<const Backend*>& layer_backends);

    // (d_conv - 1) rows of conv_dim inputs, oldest first.
    float* conv(int il) const { return reinterpret_cast<float*>(conv_[static_cast<size_t>(il)].get()); }
    // n_v_heads matrices of d_state x head_v_dim: [head][key dim][value dim].
    float* ssm(int il) const { return reinterpret_cast<float*>(ssm_[static_cast<size_t>(il)].get()); }

    // Zeroes every layer's state: a new sequence.
    void clear();
    bool empty() const { return n_recurrent_ == 0; }

    std::map<Device, uint64_t> bytes_per_device() const;
    // The bytes of one recurrent layer's state (per sequence).
    static uint64_t layer_bytes(const HParams& hp);
    static uint64_t conv_floats(const HParams& hp);
    static uint64_t ssm_floats(const HParams& hp);

private:
    HParams hp_;
    int n_recurrent_ = 0;
    std::vector<Device> devices_;
    std::vector<DeviceBuffer> conv_, ssm_;
};

}  // namespace runtime
