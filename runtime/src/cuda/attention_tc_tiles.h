// The tensor-core attention's tiles (attention_tc.cu) and the shared memory they take per block, in plain
// C++ so that a CPU test checks every head size and cache kind against every device class's limit.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/error.h"

namespace runtime::cuda {

inline constexpr int kAttentionTcRows = 64;  // query rows per block: 16 per warp, 4 warps

// Bytes for head size d, `positions` per tile and `stages` tile buffers: Q (hi, lo) for the block's rows,
// and per buffer K and V (hi, and lo unless the cache is f16, whose halves are exact), f16 rows padded
// by 8 halves.
constexpr size_t attention_tc_shared_bytes(int d, int positions, int stages, bool f16_cache) {
    const size_t ld = static_cast<size_t>(d) + 8;
    const size_t rows = 2 * static_cast<size_t>(kAttentionTcRows) +
                        static_cast<size_t>(stages) * (f16_cache ? 2 : 4) * static_cast<size_t>(positions);
    return 2 * ld * rows;
}

// Positions per full tile: 64, 32 at head sizes above 128 (registers: the scores are kN/2 per thread).
constexpr int attention_tc_full_tile(int head_dim) { return head_dim <= 128 ? 64 : 32; }
// Tile buffers: an f16 cache's tiles stream through two stages (cp.async), others are converted in one.
constexpr int attention_tc_stages(bool f16_cache) { return f16_cache ? 2 : 1; }

struct AttentionTcTiles {
    int positions = 0;  // 0: no tile fits the device
    int stages = 0;
    size_t shared_bytes = 0;
};

// Full tiles where they fit the device's per-block shared memory (cudaDevAttrMaxSharedMemoryPerBlockOptin:
// 227 KiB on H100/H200, 163 KiB on A100), half-size ones where they do not (99 KiB: RTX 30xx, 40xx, 50xx).
inline AttentionTcTiles attention_tc_tiles(int head_dim, bool f16_cache, size_t shared_limit) {
    const int full = attention_tc_full_tile(head_dim), stages = attention_tc_stages(f16_cache);
    for (const int positions : {full, full / 2}) {
        const size_t bytes = attention_tc_shared_bytes(head_dim, positions, stages, f16_cache);
        if (bytes <= shared_limit) return {positions, stages, bytes};
    }
    return {};
}

// GGUF_CUDA_SMEM_LIMIT's value (bytes): caps the device's limit, so that a large part runs a small part's
// tiles. Unset or empty: no cap; anything but a whole number of bytes is an error.
inline size_t shared_limit_cap(const char* value) {
    if (!value || !*value) return SIZE_MAX;
    const std::string v(value);
    size_t bytes = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), bytes);
    if (ec != std::errc() || end != v.data() + v.size()) {
        throw Error("GGUF_CUDA_SMEM_LIMIT: '" + v + "' is not a number of bytes");
    }
    return bytes;
}

}  // namespace runtime::cuda
