// The CPU backend: weights read in place from the mapped file, blocks computed with OpenMP across
// output rows, all scratch preallocated in a CpuWorkspace.
#pragma once

#include <cstdint>
#include <vector>

#include "matmul.h"
#include "runtime/backend.h"

namespace runtime::cpu {

struct CpuWorkspace final : Workspace {
    CpuWorkspace(const HParams& hp, const ContextShape& shape);
    uint64_t bytes() const override;

    int n_threads;
    int n_batch;
    // per-token rows
    std::vector<float> xn, q, k, v, attn, proj, gate, up;
    // attention: scores and a key row per thread; the cached keys (transposed) and values in f32,
    // n_ctx positions per KV head
    std::vector<float> scores, krow, kt, vf;
    size_t scores_ld = 0;  // n_ctx rounded up for attend()'s last chunk
    size_t kt_ld = 0;      // floats from one key dimension's row of positions to the next
    // MoE routing and expert activations (slot = token * n_expert_used + j)
    std::vector<float> router, sel_weight, h_gate, h_up, down;
    std::vector<int32_t> sel_expert, expert_count, expert_tokens, expert_slots;
    struct ExpertItem {
        int32_t expert;
        int32_t which;  // 0 gate, 1 up, 2 down
        int32_t r0;
    };
    std::vector<ExpertItem> items;

    Activations act_xn, act_attn, act_ffn, act_h;
};

class CpuBackend final : public Backend {
public:
    Device device() const override { return Device::cpu(); }
    const uint8_t* place_weights(std::span<const uint8_t> bytes) override { return bytes.data(); }
    std::unique_ptr<Workspace> make_workspace(const HParams& hp, const ContextShape& shape) const override;
    void attention(const HParams& hp, const LayerWeights& w, KvCache& kv, int il, float* x, const BatchInfo& batch,
                   Workspace& ws) const override;
    void feed_forward(const HParams& hp, const LayerWeights& w, float* x, const BatchInfo& batch,
                      Workspace& ws) const override;
    void output(const HParams& hp, const ModelWeights& w, const float* x, int n_rows, float* logits,
                Workspace& ws) const override;
};

// The parts of feed_forward, in their own files.
void moe_ffn(const HParams& hp, const LayerWeights& w, float* x, int n_tokens, CpuWorkspace& ws);

}  // namespace runtime::cpu
