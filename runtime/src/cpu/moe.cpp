// The routed experts: softmax router with top-k, and SwiGLU experts with their weighted sum. Tokens
// are grouped by expert so that each active expert's weights are streamed once per batch.
#include <algorithm>
#include <numeric>
#include <optional>

#include "cpu_backend.h"
#include "ops.h"
#include "profile.h"

namespace runtime::cpu {

namespace {

// Output rows per work item. Prompts: 16, so that each expert's rows spread over the threads. Decode
// (a few tokens, 8-16 experts): 64, so that each thread streams 64 contiguous rows (74 KB of Q4_K
// gate rows) rather than jumping between 18 KB pieces, which the hardware prefetchers follow less well.
constexpr int32_t kBlockPrompt = 16, kBlockDecode = 64;

// One parallel loop over (expert, projection, block of rows) items: with few tokens per expert,
// parallelising within one expert's matmul would leave threads idle.
void run_items(const LayerWeights& w, const Activations& acts, bool down_phase, int32_t n_items, int64_t n_rows, int32_t block,
               float* out_gate, float* out_up, float* out_down, int64_t ld_ff, int64_t ld_embd, int n_threads,
               int n_batch, CpuExecutor::MoeScratch& s) {
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int32_t i = 0; i < n_items; ++i) {
        const auto& item = s.items[static_cast<size_t>(i)];
        const size_t base = static_cast<size_t>(item.expert) * n_batch;
        const int n_tok = s.expert_count[static_cast<size_t>(item.expert)];
        const int32_t* slots = s.expert_slots.data() + base;
        const int64_t r1 = std::min<int64_t>(n_rows, item.r0 + block);
        if (down_phase) {
            // the expert hidden rows are indexed by slot, and so are the outputs
            matmul_rows(w.down_exps, item.expert, acts, slots, slots, n_tok, item.r0, r1, out_down, ld_embd);
        } else {
            const int32_t* tokens = s.expert_tokens.data() + base;
            const Weight& m = item.which == 0 ? w.gate_exps : w.up_exps;
            matmul_rows(m, item.expert, acts, tokens, slots, n_tok, item.r0, r1, item.which == 0 ? out_gate : out_up,
                        ld_ff);
        }
    }
}

}  // namespace

void route_topk(const Tensor& logits, const RouterParams& p, const Routing& out) {
    const int E = static_cast<int>(logits.cols);
    const int K = p.k;
    int32_t order[512];  // llama.cpp caps expert_count at 512 (LLAMA_MAX_EXPERTS); checked at load
    const bool scaled = p.scale != 0.0f && p.scale != 1.0f;
    for (int64_t t = 0; t < logits.rows; ++t) {
        float* probs = logits.row(t);
        softmax(probs, E);
        std::iota(order, order + E, 0);
        std::partial_sort(order, order + K, order + E, [&](int32_t a, int32_t b) {
            return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
        });
        float sum = 0.0f;
        for (int j = 0; j < K; ++j) sum += probs[order[j]];
        // as llama.cpp: the sum is clamped away from 0 before dividing
        const float norm = p.normalize ? 1.0f / std::max(sum, 6.103515625e-5f) : 1.0f;
        for (int j = 0; j < K; ++j) {
            const size_t slot = static_cast<size_t>(t * K + j);
            out.ids[slot] = order[j];
            out.weights[slot] = probs[order[j]] * norm * (scaled ? p.scale : 1.0f);
        }
    }
}

void run_experts(const HParams& hp, const LayerWeights& w, Activations& x, const Routing& r, const Tensor& out,
                 int n_threads, int n_batch, CpuExecutor::MoeScratch& s) {
    const int64_t n_embd = hp.n_embd, n_ff = hp.n_ff_exp;
    const int E = static_cast<int>(hp.n_expert), K = r.k;
    const int n_tokens = r.n_tokens;

    std::optional<ProfileScope> prof(std::in_place, "experts.gate_up");
    // group the slots (token t's j-th expert is slot t * K + j) by expert
    std::fill(s.expert_count.begin(), s.expert_count.end(), 0);
    for (int32_t slot = 0; slot < n_tokens * K; ++slot) {
        const int32_t e = r.ids[slot];
        const int32_t c = s.expert_count[static_cast<size_t>(e)]++;
        s.expert_tokens[static_cast<size_t>(e) * n_batch + c] = slot / K;
        s.expert_slots[static_cast<size_t>(e) * n_batch + c] = slot;
    }

    // gate and up projections of every active expert
    const int32_t block = n_tokens <= 4 ? kBlockDecode : kBlockPrompt;
    x.prepare(w.gate_exps.type, n_threads);
    int32_t n_items = 0;
    for (int32_t e = 0; e < E; ++e) {
        if (s.expert_count[static_cast<size_t>(e)] == 0) continue;
        for (int32_t which = 0; which < 2; ++which) {
            for (int32_t r0 = 0; r0 < n_ff; r0 += block) s.items[static_cast<size_t>(n_items++)] = {e, which, r0};
        }
    }
    if (w.gate_exps.type != w.up_exps.type) {
        // activations are prepared for one vec_dot type at a time: run the two projections apart
        int32_t n_gate = 0;
        for (int32_t i = 0; i < n_items; ++i) {
            if (s.items[static_cast<size_t>(i)].which == 0) s.items[static_cast<size_t>(n_gate++)] = s.items[static_cast<size_t>(i)];
        }
        run_items(w, x, false, n_gate, n_ff, block, s.h_gate.data(), s.h_up.data(), nullptr, n_ff, n_embd, n_threads, n_batch,
                  s);
        n_items = 0;
        for (int32_t e = 0; e < E; ++e) {
            if (s.expert_count[static_cast<size_t>(e)] == 0) continue;
            for (int32_t r0 = 0; r0 < n_ff; r0 += block) s.items[static_cast<size_t>(n_items++)] = {e, 1, r0};
        }
        x.prepare(w.up_exps.type, n_threads);
    }
    run_items(w, x, false, n_items, n_ff, block, s.h_gate.data(), s.h_up.data(), nullptr, n_ff, n_embd, n_threads, n_batch, s);

    prof.emplace("experts.down");
    const int n_slots = n_tokens * K;
    swiglu(s.h_gate.data(), s.h_up.data(), s.h_gate.data(), n_slots * n_ff);

    // down projections, then the weighted sum of each token's experts
    s.act_h.set(s.h_gate.data(), n_slots, n_ff, n_ff);
    s.act_h.prepare(w.down_exps.type, n_threads);
    n_items = 0;
    for (int32_t e = 0; e < E; ++e) {
        if (s.expert_count[static_cast<size_t>(e)] == 0) continue;
        for (int32_t r0 = 0; r0 < n_embd; r0 += block) s.items[static_cast<size_t>(n_items++)] = {e, 2, r0};
    }
    run_items(w, s.act_h, true, n_items, n_embd, block, nullptr, nullptr, s.down.data(), n_ff, n_embd, n_threads, n_batch, s);

    prof.emplace("experts.sum");
    for (int t = 0; t < n_tokens; ++t) {
        float* o = out.row(t);
        std::fill(o, o + n_embd, 0.0f);
        for (int j = 0; j < K; ++j) {
            const size_t slot = static_cast<size_t>(t * K + j);
            const float wgt = r.weights[slot];
            const float* d = s.down.data() + slot * n_embd;
            for (int64_t i = 0; i < n_embd; ++i) o[i] += wgt * d[i];
        }
    }
}

}  // namespace runtime::cpu
