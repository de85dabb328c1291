// The routed-experts FFN: softmax router, top-k experts per token, SwiGLU experts, weighted sum.
// Tokens are grouped by expert so that each active expert's weights are streamed once per batch.
#include <algorithm>
#include <numeric>

#include "cpu_backend.h"
#include "ops.h"

namespace runtime::cpu {

namespace {

constexpr int32_t kBlock = 16;  // output rows per work item

void route(const HParams& hp, int n_tokens, CpuWorkspace& ws) {
    const int E = static_cast<int>(hp.n_expert);
    const int K = static_cast<int>(hp.n_expert_used);
    std::fill(ws.expert_count.begin(), ws.expert_count.end(), 0);
    int32_t order[512];  // llama.cpp caps expert_count at 512 (LLAMA_MAX_EXPERTS); checked at load
    for (int t = 0; t < n_tokens; ++t) {
        float* probs = ws.router.data() + static_cast<size_t>(t) * E;
        softmax(probs, E);
        std::iota(order, order + E, 0);
        std::partial_sort(order, order + K, order + E, [&](int32_t a, int32_t b) {
            return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
        });
        float sum = 0.0f;
        for (int j = 0; j < K; ++j) sum += probs[order[j]];
        // as llama.cpp: the sum is clamped away from 0 before dividing
        const float norm = hp.expert_weights_norm ? 1.0f / std::max(sum, 6.103515625e-5f) : 1.0f;
        const bool scaled = hp.expert_weights_scale != 0.0f && hp.expert_weights_scale != 1.0f;
        for (int j = 0; j < K; ++j) {
            const int32_t e = order[j];
            const int32_t slot = t * K + j;
            ws.sel_expert[static_cast<size_t>(slot)] = e;
            ws.sel_weight[static_cast<size_t>(slot)] = probs[e] * norm * (scaled ? hp.expert_weights_scale : 1.0f);
            const int32_t c = ws.expert_count[static_cast<size_t>(e)]++;
            ws.expert_tokens[static_cast<size_t>(e) * ws.n_batch + c] = t;
            ws.expert_slots[static_cast<size_t>(e) * ws.n_batch + c] = slot;
        }
    }
}

// One parallel loop over (expert, projection, block of rows) items: with few tokens per expert,
// parallelising within one expert's matmul would leave threads idle.
void run_items(const LayerWeights& w, const Activations& acts, bool down_phase, int32_t n_items, int64_t n_rows,
               float* out_gate, float* out_up, float* out_down, int64_t ld_ff, int64_t ld_embd, CpuWorkspace& ws) {
#pragma omp parallel for num_threads(ws.n_threads) schedule(dynamic, 1)
    for (int32_t i = 0; i < n_items; ++i) {
        const auto& item = ws.items[static_cast<size_t>(i)];
        const size_t base = static_cast<size_t>(item.expert) * ws.n_batch;
        const int n_tok = ws.expert_count[static_cast<size_t>(item.expert)];
        const int32_t* slots = ws.expert_slots.data() + base;
        const int64_t r1 = std::min<int64_t>(n_rows, item.r0 + kBlock);
        if (down_phase) {
            // the expert hidden rows are indexed by slot, and so are the outputs
            matmul_rows(w.down_exps, item.expert, acts, slots, slots, n_tok, item.r0, r1, out_down, ld_embd);
        } else {
            const int32_t* tokens = ws.expert_tokens.data() + base;
            const Weight& m = item.which == 0 ? w.gate_exps : w.up_exps;
            matmul_rows(m, item.expert, acts, tokens, slots, n_tok, item.r0, r1, item.which == 0 ? out_gate : out_up,
                        ld_ff);
        }
    }
}

}  // namespace

void moe_ffn(const HParams& hp, const LayerWeights& w, float* x, int n_tokens, CpuWorkspace& ws) {
    const int64_t n_embd = hp.n_embd, n_ff = hp.n_ff_exp;
    const int E = static_cast<int>(hp.n_expert), K = static_cast<int>(hp.n_expert_used);
    for (int t = 0; t < n_tokens; ++t) {
        rms_norm(x + t * n_embd, w.ffn_norm.data(), ws.xn.data() + t * n_embd, n_embd, hp.rms_eps);
    }
    ws.act_xn.set(ws.xn.data(), n_tokens, n_embd, n_embd);
    matmul(w.gate_inp, 0, ws.act_xn, ws.router.data(), E, ws.n_threads);
    route(hp, n_tokens, ws);

    // gate and up projections of every active expert
    ws.act_xn.prepare(w.gate_exps.type, ws.n_threads);
    int32_t n_items = 0;
    for (int32_t e = 0; e < E; ++e) {
        if (ws.expert_count[static_cast<size_t>(e)] == 0) continue;
        for (int32_t which = 0; which < 2; ++which) {
            for (int32_t r0 = 0; r0 < n_ff; r0 += kBlock) ws.items[static_cast<size_t>(n_items++)] = {e, which, r0};
        }
    }
    if (w.gate_exps.type != w.up_exps.type) {
        // activations are prepared for one vec_dot type at a time: run the two projections apart
        int32_t n_gate = 0;
        for (int32_t i = 0; i < n_items; ++i) {
            if (ws.items[static_cast<size_t>(i)].which == 0) ws.items[static_cast<size_t>(n_gate++)] = ws.items[static_cast<size_t>(i)];
        }
        run_items(w, ws.act_xn, false, n_gate, n_ff, ws.h_gate.data(), ws.h_up.data(), nullptr, n_ff, n_embd, ws);
        n_items = 0;
        for (int32_t e = 0; e < E; ++e) {
            if (ws.expert_count[static_cast<size_t>(e)] == 0) continue;
            for (int32_t r0 = 0; r0 < n_ff; r0 += kBlock) ws.items[static_cast<size_t>(n_items++)] = {e, 1, r0};
        }
        ws.act_xn.prepare(w.up_exps.type, ws.n_threads);
    }
    run_items(w, ws.act_xn, false, n_items, n_ff, ws.h_gate.data(), ws.h_up.data(), nullptr, n_ff, n_embd, ws);

    const int n_slots = n_tokens * K;
    swiglu(ws.h_gate.data(), ws.h_up.data(), ws.h_gate.data(), n_slots * n_ff);

    // down projections, then the weighted sum of each token's experts
    ws.act_h.set(ws.h_gate.data(), n_slots, n_ff, n_ff);
    ws.act_h.prepare(w.down_exps.type, ws.n_threads);
    n_items = 0;
    for (int32_t e = 0; e < E; ++e) {
        if (ws.expert_count[static_cast<size_t>(e)] == 0) continue;
        for (int32_t r0 = 0; r0 < n_embd; r0 += kBlock) ws.items[static_cast<size_t>(n_items++)] = {e, 2, r0};
    }
    run_items(w, ws.act_h, true, n_items, n_embd, nullptr, nullptr, ws.down.data(), n_ff, n_embd, ws);

    for (int t = 0; t < n_tokens; ++t) {
        float* xt = x + t * n_embd;
        for (int j = 0; j < K; ++j) {
            const size_t slot = static_cast<size_t>(t * K + j);
            const float wgt = ws.sel_weight[slot];
            const float* d = ws.down.data() + slot * n_embd;
            for (int64_t i = 0; i < n_embd; ++i) xt[i] += wgt * d[i];
        }
    }
}

}  // namespace runtime::cpu
