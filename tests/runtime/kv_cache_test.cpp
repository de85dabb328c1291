// The KV cache's layout: one allocation per backend, each attention layer's keys and values in their own
// zeroed range at a 256-byte step, nothing for linear-attention layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "cpu/cpu_backend.h"
#include "runtime/kv_cache.h"

namespace {

runtime::HParams shape(uint32_t full_attn_interval) {
    runtime::HParams hp;
    hp.n_layer = 6;
    hp.n_head_kv = 2;
    hp.head_dim_k = 64;
    hp.head_dim_v = 64;
    hp.full_attn_interval = full_attn_interval;
    return hp;
}

struct Range {
    const uint8_t* begin;
    const uint8_t* end;
    const runtime::Backend* owner;
};

// Every layer's key and value ranges, with the backend that holds them.
std::vector<Range> ranges(const runtime::KvCache& kv, const runtime::HParams& hp,
                          const std::vector<const runtime::Backend*>& backends) {
    std::vector<Range> out;
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        if (hp.is_recurrent(il)) continue;
        const uint8_t* k = kv.k_row(static_cast<int>(il), 0);
        const uint8_t* v = kv.v_row(static_cast<int>(il), 0);
        out.push_back({k, k + kv.k_row_bytes() * static_cast<size_t>(kv.n_ctx()), backends[il]});
        out.push_back({v, v + kv.v_row_bytes() * static_cast<size_t>(kv.n_ctx()), backends[il]});
    }
    return out;
}

TEST(KvCacheLayout, LayersGetDisjointZeroedRangesAtAlignedSteps) {
    runtime::cpu::CpuBackend a, b;
    const runtime::HParams hp = shape(0);
    // layers alternate between two backends; q8_0 rows (136 bytes at 128 values) make ranges of 952
    // bytes at 7 positions, which the layout pads to 1024
    std::vector<const runtime::Backend*> backends;
    for (uint32_t il = 0; il < hp.n_layer; ++il) backends.push_back(il % 2 ? &b : &a);
    const runtime::KvCache kv(hp, 7, gguf::GgmlType::Q8_0, gguf::GgmlType::F16, backends);
    ASSERT_EQ(kv.k_row_bytes(), 136u);
    std::vector<Range> all = ranges(kv, hp, backends);
    ASSERT_EQ(all.size(), 12u);
    for (const Range& r : all) {
        EXPECT_TRUE(std::all_of(r.begin, r.end, [](uint8_t c) { return c == 0; }));
    }
    std::sort(all.begin(), all.end(), [](const Range& x, const Range& y) { return x.begin < y.begin; });
    for (size_t i = 1; i < all.size(); ++i) EXPECT_LE(all[i - 1].end, all[i].begin) << "ranges " << i - 1 << " and " << i;
    // within a backend's allocation the ranges start 256 bytes apart or more, at multiples of 256
    for (const runtime::Backend* owner : {static_cast<const runtime::Backend*>(&a), static_cast<const runtime::Backend*>(&b)}) {
        const uint8_t* first = nullptr;
        for (const Range& r : all) {
            if (r.owner != owner) continue;
            if (!first) first = r.begin;
            EXPECT_EQ((r.begin - first) % 256, 0);
        }
    }
    EXPECT_EQ(kv.bytes_per_device().at(runtime::Device::cpu()), 6 * kv.layer_bytes());
}

TEST(KvCacheLayout, LinearAttentionLayersHaveNoCache) {
    runtime::cpu::CpuBackend a;
    const runtime::HParams hp = shape(3);  // layers 2 and 5 attend
    const std::vector<const runtime::Backend*> backends(hp.n_layer, &a);
    const runtime::KvCache kv(hp, 16, gguf::GgmlType::F16, gguf::GgmlType::F16, backends);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        EXPECT_EQ(kv.k_row(static_cast<int>(il), 0) == nullptr, hp.is_recurrent(il)) << "layer " << il;
    }
    EXPECT_EQ(ranges(kv, hp, backends).size(), 4u);
    EXPECT_EQ(kv.bytes_per_device().at(runtime::Device::cpu()), 2 * kv.layer_bytes());
}

}  // namespace
