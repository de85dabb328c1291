#include "runtime/kv_cache.h"

#include <cstring>

#include "quant/float16.h"
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
                 const std::vector<Device>& layer_devices)
    : n_ctx_(n_ctx),
      n_embd_k_(hp.n_embd_k()),
      n_embd_v_(hp.n_embd_v()),
      type_k_(type_k),
      type_v_(type_v),
      devices_(layer_devices) {
    check_head(type_k, hp.head_dim_k, "key");
    check_head(type_v, hp.head_dim_v, "value");
    k_row_bytes_ = gguf::row_size(type_k, static_cast<uint64_t>(n_embd_k_));
    v_row_bytes_ = gguf::row_size(type_v, static_cast<uint64_t>(n_embd_v_));
    k_head_bytes_ = gguf::row_size(type_k, hp.head_dim_k);
    v_head_bytes_ = gguf::row_size(type_v, hp.head_dim_v);
    k_.resize(hp.n_layer);
    v_.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        k_[il].assign(k_row_bytes_ * static_cast<size_t>(n_ctx), 0);
        v_[il].assign(v_row_bytes_ * static_cast<size_t>(n_ctx), 0);
    }
}

namespace {

// Rows are contiguous in the cache, so n rows convert as one run. F32 and F16 are converted here
// directly: this runs for every token and libquant's entry point opens a parallel region.
void store_rows(GgmlType type, const float* src, uint8_t* dst, int n, int64_t width) {
    const size_t count = static_cast<size_t>(n) * static_cast<size_t>(width);
    if (type == GgmlType::F32) {
        std::memcpy(dst, src, count * sizeof(float));
    } else if (type == GgmlType::F16) {
        auto* h = reinterpret_cast<uint16_t*>(dst);
        for (size_t i = 0; i < count; ++i) h[i] = quant::f32_to_f16(src[i]);
    } else {
        quant::quantize_rows(type, src, dst, n, width);
    }
}

}  // namespace

void KvCache::store(int il, int pos0, int n, const float* k, const float* v) {
    store_rows(type_k_, k, k_row(il, pos0), n, n_embd_k_);
    store_rows(type_v_, v, v_row(il, pos0), n, n_embd_v_);
}

std::map<Device, uint64_t> KvCache::bytes_per_device() const {
    std::map<Device, uint64_t> out;
    for (size_t il = 0; il < k_.size(); ++il) out[devices_[il]] += k_[il].size() + v_[il].size();
    return out;
}

uint64_t KvCache::bytes_needed(const HParams& hp, int n_ctx, GgmlType type_k, GgmlType type_v) {
    return static_cast<uint64_t>(hp.n_layer) * static_cast<uint64_t>(n_ctx) *
           (gguf::row_size(type_k, hp.n_embd_k()) + gguf::row_size(type_v, hp.n_embd_v()));
}

}  // namespace runtime
