#include "runtime/recurrent_state.h"

#include <cstring>

#include "runtime/error.h"

namespace runtime {

uint64_t RecurrentState::conv_floats(const HParams& hp) {
    return static_cast<uint64_t>(hp.ssm_d_conv - 1) * hp.ssm_conv_dim();
}

uint64_t RecurrentState::ssm_floats(const HParams& hp) {
    return static_cast<uint64_t>(hp.ssm_n_v_heads) * hp.ssm_d_state * hp.ssm_head_v_dim();
}

uint64_t RecurrentState::layer_bytes(const HParams& hp) { return (conv_floats(hp) + ssm_floats(hp)) * sizeof(float); }

RecurrentState::RecurrentState(const HParams& hp, const std::vector<const Backend*>& layer_backends) : hp_(hp) {
    conv_.resize(layer_backends.size());
    ssm_.resize(layer_backends.size());
    devices_.resize(layer_backends.size());
    for (size_t il = 0; il < layer_backends.size(); ++il) {
        if (!hp.is_recurrent(static_cast<uint32_t>(il))) continue;
        if (!layer_backends[il]->device().is_cpu()) {
            throw Error("the recurrent state of layer " + std::to_string(il) + " must be on the CPU");
        }
        devices_[il] = layer_backends[il]->device();
        // allocate() zeroes: a fresh sequence
        conv_[il] = layer_backends[il]->allocate(conv_floats(hp) * sizeof(float));
        ssm_[il] = layer_backends[il]->allocate(ssm_floats(hp) * sizeof(float));
        ++n_recurrent_;
    }
}

void RecurrentState::clear() {
    for (size_t il = 0; il < conv_.size(); ++il) {
        if (!conv_[il].get()) continue;
        std::memset(conv_[il].get(), 0, conv_floats(hp_) * sizeof(float));
        std::memset(ssm_[il].get(), 0, ssm_floats(hp_) * sizeof(float));
    }
}

std::map<Device, uint64_t> RecurrentState::bytes_per_device() const {
    std::map<Device, uint64_t> out;
    for (size_t il = 0; il < conv_.size(); ++il) {
        if (conv_[il].get()) out[devices_[il]] += layer_bytes(hp_);
    }
    return out;
}

}  // namespace runtime
