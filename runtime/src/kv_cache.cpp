#include "runtime/kv_cache.h"

#include <map>

#include "quant/quant.h"
#include "runtime/error.h"

namespace runtime {

using gguf::GgmlType;

gguf::GgmlType parse_kv_type(std::string_view name, std::string_view option) {
    const auto type = gguf::type_from_name(name);
    const bool allowed = type && (*type == GgmlType::F32 || *type == GgmlType::F16 || *type == GgmlType::Q8_0 ||
                                  *type == GgmlType::Q4_0);
    if (!allowed) {
        throw Error(std::string(option) + ": KV cache type '" + std::string(name) +
                    "' is not one of f32, f16, q8_0, q4_0");
    }
    if (!quant::can_quantize(*type) || !quant::can_dequantize(*type)) {
        throw Error(std::string(option) + ": KV cache type " + std::string(name) +
                    " needs quantization support that this build of libquant lacks");
    }
    return *type;
}

namespace {

void check_head(GgmlType type, uint32_t head_dim, const char* what) {
    const uint32_t block = gguf::type_traits(type).block_size;
    if (head_dim % block != 0) {
        throw Error(std::string("KV cache type ") + std::string(gguf::type_name(type)) + " needs the " + what +
                    " head size (" + std::to_string(head_dim) + ") to be a multiple of " + std::to_string(block));
    }
}

}  // namespace

KvCache::KvCache(const HParams& hp, int n_ctx, GgmlType type_k, GgmlType type_v,
                 const std::vector<const Backend*>& layer_backends)
    : n_ctx_(n_ctx),
      n_embd_k_(hp.n_embd_k()),
      n_embd_v_(hp.n_embd_v()),
      type_k_(type_k),
      type_v_(type_v) {
    check_head(type_k, hp.head_dim_k, "key");
    check_head(type_v, hp.head_dim_v, "value");
    k_row_bytes_ = gguf::row_size(type_k, static_cast<uint64_t>(n_embd_k_));
    v_row_bytes_ = gguf::row_size(type_v, static_cast<uint64_t>(n_embd_v_));
    k_head_bytes_ = gguf::row_size(type_k, hp.head_dim_k);
    v_head_bytes_ = gguf::row_size(type_v, hp.head_dim_v);
    // one allocation per backend, each layer's keys then values at device_aligned offsets in it
    const size_t k_bytes = device_aligned(k_row_bytes_ * static_cast<size_t>(n_ctx));
    const size_t v_bytes = device_aligned(v_row_bytes_ * static_cast<size_t>(n_ctx));
    std::map<const Backend*, size_t> room;
    for (size_t il = 0; il < layer_backends.size(); ++il) {
        devices_.push_back(layer_backends[il]->device());
        // linear-attention layers keep a recurrent state instead (RecurrentState)
        if (!hp.is_recurrent(static_cast<uint32_t>(il))) room[layer_backends[il]] += k_bytes + v_bytes;
    }
    std::map<const Backend*, uint8_t*> next;
    for (const auto& [b, bytes] : room) {
        blocks_.push_back(b->allocate(bytes));
        next[b] = blocks_.back().get();
    }
    for (size_t il = 0; il < layer_backends.size(); ++il) {
        if (hp.is_recurrent(static_cast<uint32_t>(il))) {
            k_.push_back(nullptr);
            v_.push_back(nullptr);
            continue;
        }
        uint8_t*& at = next[layer_backends[il]];
        k_.push_back(at);
        v_.push_back(at + k_bytes);
        at += k_bytes + v_bytes;
    }
}

std::map<Device, uint64_t> KvCache::bytes_per_device() const {
    std::map<Device, uint64_t> out;
    for (size_t il = 0; il < devices_.size(); ++il) {
        if (k_[il]) out[devices_[il]] += layer_bytes();
    }
    return out;
}

}  // namespace runtime
