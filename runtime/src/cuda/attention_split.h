// How the CUDA attention splits the context for decode-size batches, and the scratch that takes: shared by
// the kernel (attention.cu) and by --fit's count of the executor's scratch (fit.cpp), so that the plan
// holds exactly what the executor allocates. Plain C++: the runtime library includes it without CUDA.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace runtime::cuda {

// Batches of at most this many tokens split the positions over blocks and combine the parts; larger
// ones run one block per query tile (no scratch).
inline constexpr int kAttentionSplitMaxTokens = 16;
// A split covers at least this many positions (the kernel's tile of keys), and there are at most 128.
inline constexpr int kAttentionSplitChunk = 32;
inline constexpr int kAttentionMaxSplits = 128;

// Splits for n_tok tokens over a context of n_ctx positions: enough blocks to fill the GPU at long
// context, few enough that the combine stays cheap.
inline int plan_splits(int n_tok, int n_ctx) {
    if (n_tok > kAttentionSplitMaxTokens) return 1;
    return std::clamp((n_ctx + kAttentionSplitChunk - 1) / kAttentionSplitChunk, 1, kAttentionMaxSplits);
}

// Per split, token and head: the partial output row and its (max, sum).
inline size_t attention_scratch_bytes(int n_tok_max, int n_head, int head_dim_v, int n_ctx) {
    const size_t slots = static_cast<size_t>(plan_splits(1, n_ctx)) *
                         static_cast<size_t>(std::min(n_tok_max, kAttentionSplitMaxTokens)) * static_cast<size_t>(n_head);
    return slots * (static_cast<size_t>(head_dim_v) * sizeof(float) + 2 * sizeof(float));
}

}  // namespace runtime::cuda
