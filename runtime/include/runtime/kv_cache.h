// The attention KV cache: for every attention layer (not qwen35moe's linear-attention ones), one row per position holding all KV heads, in f32, f16 or a
// block type (q8_0, q4_0) as llama.cpp's -ctk/-ctv choose. Each layer's rows live in the memory of the
// device its attention runs on; that device's executor writes and reads them.
#pragma once

#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "gguf/types.h"
#include "runtime/backend.h"
#include "runtime/device.h"
#include "runtime/hparams.h"

namespace runtime {

// "f16", "q8_0", ... -> type; a type the cache cannot hold throws runtime::Error naming the option.
gguf::GgmlType parse_kv_type(std::string_view name, std::string_view option);

class KvCache {
public:
    // `layer_backends[il]` holds layer il's attention weights; its cache rows are allocated there.
    KvCache(const HParams& hp, int n_ctx, gguf::GgmlType type_k, gguf::GgmlType type_v,
            const std::vector<const Backend*>& layer_backends);

    int n_ctx() const { return n_ctx_; }
    gguf::GgmlType type_k() const { return type_k_; }
    gguf::GgmlType type_v() const { return type_v_; }
    size_t k_row_bytes() const { return k_row_bytes_; }
    size_t v_row_bytes() const { return v_row_bytes_; }
    // bytes of one head's slice within a row
    size_t k_head_bytes() const { return k_head_bytes_; }
    size_t v_head_bytes() const { return v_head_bytes_; }

    // Where position pos of layer il starts, in the memory of the layer's device.
    uint8_t* k_row(int il, int pos) const { return k_[il] + static_cast<size_t>(pos) * k_row_bytes_; }
    uint8_t* v_row(int il, int pos) const { return v_[il] + static_cast<size_t>(pos) * v_row_bytes_; }

    std::map<Device, uint64_t> bytes_per_device() const;
    // Bytes one layer's cache takes.
    uint64_t layer_bytes() const { return (k_row_bytes_ + v_row_bytes_) * static_cast<uint64_t>(n_ctx_); }

private:
    int n_ctx_;
    int64_t n_embd_k_, n_embd_v_;
    gguf::GgmlType type_k_, type_v_;
    size_t k_row_bytes_, v_row_bytes_, k_head_bytes_, v_head_bytes_;
    std::vector<Device> devices_;
    std::vector<DeviceBuffer> blocks_;  // one per backend
    std::vector<uint8_t*> k_, v_;       // per layer, into its backend's block (null: no cache)
};

}  // namespace runtime
