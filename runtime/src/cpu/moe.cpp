// The routed experts: softmax router with top-k, and SwiGLU experts with their weighted sum. Tokens
// are grouped by expert so that each active expert's weights are streamed once per batch.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <numeric>

#include "cpu_backend.h"
#include "ops.h"
#include "profile.h"
#include "quant/gemm.h"

namespace runtime::cpu {

namespace {

// Rows are handed out in groups of 16: a multiple of the 4-row tiles, so a row's result does not depend
// on the thread count, and long enough that each thread streams contiguous runs of a matrix.
constexpr int64_t kRowGroup = 16;

// Relative cost of a group of one expert's gate and up rows: streaming its weights (about what the
// tiles spend on two tokens) plus the tokens routed to it. Decode has one token per expert, so the
// groups weigh the same; prompts route unevenly.
constexpr int64_t kStreamCost = 2;

// Rows at a time that matmul_rows takes when an expert has more tokens than one tile: it walks the
// tokens outside and the rows inside, so the rows of one call should stay in L2 across the tokens
// (64 Q4_K rows of 2048: 74 KB). One or a few tokens stream the whole run in one call.
constexpr int64_t kTokenTileRows = 64;

int64_t rows_per_call(int n_tok, int64_t n_rows) {
    return n_tok > quant::kGemmCols ? kTokenTileRows : n_rows;
}

// Gate and up rows [r0, r1) of one expert for its tokens, then the activation into the gate rows
// (gpt-oss: the expert's gate and up biases first, and the clamped SwiGLU when hp.swiglu_limit > 0).
void gate_up_rows(const HParams& hp, const LayerWeights& w, int32_t e, const Activations& x, const Activations& x_up,
                  int64_t r0, int64_t r1, int64_t n_ff, int n_batch, CpuExecutor::MoeScratch& s) {
    const size_t base = static_cast<size_t>(e) * n_batch;
    const int n_tok = s.expert_count[static_cast<size_t>(e)];
    const int32_t* tokens = s.expert_tokens.data() + base;
    const int32_t* slots = s.expert_slots.data() + base;
    const int64_t step = rows_per_call(n_tok, r1 - r0);
    for (int64_t a = r0; a < r1; a += step) {
        const int64_t b = std::min(r1, a + step);
        matmul_rows(w.gate_exps, e, x, tokens, slots, n_tok, a, b, s.h_gate.data(), n_ff);
        matmul_rows(w.up_exps, e, x_up, tokens, slots, n_tok, a, b, s.h_up.data(), n_ff);
    }
    for (int i = 0; i < n_tok; ++i) {
        const size_t off = static_cast<size_t>(slots[i]) * n_ff + r0;
        float* g = s.h_gate.data() + off;
        float* u = s.h_up.data() + off;
        if (!w.gate_exps_b.empty()) add_expert_bias(g, 0, &e, 1, w.gate_exps_b.data() + r0, n_ff, r1 - r0);
        if (!w.up_exps_b.empty()) add_expert_bias(u, 0, &e, 1, w.up_exps_b.data() + r0, n_ff, r1 - r0);
        if (hp.swiglu_limit > 0.0f) {
            swiglu_oai(g, u, g, r1 - r0, hp.swiglu_alpha, hp.swiglu_limit);
        } else {
            swiglu(g, u, g, r1 - r0);
        }
    }
}

// Splits the active experts' gate/up row groups into one contiguous run per thread, of about equal
// cost: s.bounds[t] is thread t's first group (groups are numbered expert by expert in s.active order).
void split_gate_up(int64_t groups_per_expert, int n_threads, CpuExecutor::MoeScratch& s) {
    const int n_active = s.n_active;
    auto cost = [&](int i) { return s.expert_count[static_cast<size_t>(s.active[static_cast<size_t>(i)])] + kStreamCost; };
    int64_t total = 0;
    for (int i = 0; i < n_active; ++i) total += cost(i) * groups_per_expert;
    // thread t starts at the first group whose cost before it reaches t * total / n_threads
    int t = 1;
    int64_t before = 0;
    s.bounds[0] = 0;
    for (int i = 0; i < n_active && t < n_threads; ++i) {
        for (int64_t g = 0; g < groups_per_expert && t < n_threads; ++g) {
            while (t < n_threads && before * n_threads >= total * t) {
                s.bounds[static_cast<size_t>(t++)] = i * groups_per_expert + g;
            }
            before += cost(i);
        }
    }
    while (t <= n_threads) s.bounds[static_cast<size_t>(t++)] = n_active * groups_per_expert;
}

// Output rows [r0, r1): the down rows of every active expert for its slots, then each token's weighted
// sum of its experts' rows.
void down_rows(const LayerWeights& w, const Routing& r, CpuExecutor::MoeScratch& s, const Tensor& out, int64_t r0,
               int64_t r1, int64_t n_embd, int n_tokens, int K, int n_batch) {
    const int n_slots = n_tokens * K;
    for (int i = 0; i < s.n_active; ++i) {
        const int32_t e = s.active[static_cast<size_t>(i)];
        const int32_t* slots = s.expert_slots.data() + static_cast<size_t>(e) * n_batch;
        const int n_tok = s.expert_count[static_cast<size_t>(e)];
        const int64_t step = rows_per_call(n_tok, r1 - r0);
        for (int64_t a = r0; a < r1; a += step) {
            matmul_rows(w.down_exps, e, s.act_h, slots, slots, n_tok, a, std::min(r1, a + step), s.down.data(),
                        n_embd);
        }
    }
    // gpt-oss: each slot's down rows take their expert's bias before the weighting
    if (!w.down_exps_b.empty()) {
        add_expert_bias(s.down.data() + r0, n_embd, r.ids, n_slots, w.down_exps_b.data() + r0, n_embd, r1 - r0);
    }
    for (int t = 0; t < n_tokens; ++t) {
        float* o = out.row(t);
        std::fill(o + r0, o + r1, 0.0f);
        for (int j = 0; j < K; ++j) {
            const size_t slot = static_cast<size_t>(t * K + j);
            const float wgt = r.weights[slot];
            const float* d = s.down.data() + slot * n_embd;
            for (int64_t c = r0; c < r1; ++c) o[c] += wgt * d[c];
        }
    }
}

// gpt-oss: the K largest logits, then the softmax of those K as the weights.
void route_softmax_topk(const float* logits, int E, int K, int32_t* order, int32_t* ids, float* weights) {
    std::iota(order, order + E, 0);
    std::partial_sort(order, order + K, order + E, [&](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int j = 0; j < K; ++j) {
        ids[j] = order[j];
        weights[j] = logits[order[j]];
    }
    softmax(weights, K);
}

}  // namespace

void route_topk(const Tensor& logits, const RouterParams& p, const Routing& out) {
    const int E = static_cast<int>(logits.cols);
    const int K = p.k;
    int32_t order[512];  // llama.cpp caps expert_count at 512 (LLAMA_MAX_EXPERTS); checked at load
    const bool scaled = p.scale != 0.0f && p.scale != 1.0f;
    for (int64_t t = 0; t < logits.rows; ++t) {
        float* probs = logits.row(t);
        if (p.softmax_topk) {
            float* wt = out.weights + t * K;
            route_softmax_topk(probs, E, K, order, out.ids + t * K, wt);
            if (scaled) {
                for (int j = 0; j < K; ++j) wt[j] *= p.scale;  // a file's expert_weights_scale, as llama.cpp
            }
            continue;
        }
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
    ProfileScope prof("experts");
    const int64_t n_embd = hp.n_embd, n_ff = hp.n_ff_exp;
    const int E = static_cast<int>(hp.n_expert), K = r.k;
    const int n_tokens = r.n_tokens;
    const int n_slots = n_tokens * K;

    // group the slots (token t's j-th expert is slot t * K + j) by expert
    std::fill(s.expert_count.begin(), s.expert_count.end(), 0);
    for (int32_t slot = 0; slot < n_slots; ++slot) {
        const int32_t e = r.ids[slot];
        const int32_t c = s.expert_count[static_cast<size_t>(e)]++;
        s.expert_tokens[static_cast<size_t>(e) * n_batch + c] = slot / K;
        s.expert_slots[static_cast<size_t>(e) * n_batch + c] = slot;
    }
    s.n_active = 0;
    for (int32_t e = 0; e < E; ++e) {
        if (s.expert_count[static_cast<size_t>(e)] > 0) s.active[static_cast<size_t>(s.n_active++)] = e;
    }

    // the input rows in the format of the gate weights, and of the up weights where that differs
    x.prepare(w.gate_exps.type, n_threads);
    Activations* x_up = &x;
    if (activation_format(w.up_exps.type) != activation_format(w.gate_exps.type)) {
        s.act_up.set(x.row(0), x.n_rows(), x.n(), x.ld());
        s.act_up.prepare(w.up_exps.type, n_threads);
        x_up = &s.act_up;
    }
    const int64_t groups_ff = (n_ff + kRowGroup - 1) / kRowGroup;
    const int64_t groups_embd = (n_embd + kRowGroup - 1) / kRowGroup;
    const int n_runs = n_threads * s.chunks;  // gate/up runs, and ranges of down rows
    split_gate_up(groups_ff, n_runs, s);
    s.act_h.set(s.h_gate.data(), n_slots, n_ff, n_ff);
    s.act_h.format(w.down_exps.type);

    // One parallel region, two barriers: the gate and up rows of every active expert with the
    // activation applied (contiguous runs of about equal cost); the hidden rows converted for the down
    // weights; then ranges of the output rows: the down rows of every active expert and the weighted
    // sum of each token's experts, which needs no further wait. With s.chunks > 1 there are more runs
    // and ranges than threads: each thread takes its own first (run tid), then the others as they
    // come free, so a slow thread holds up a phase by less than a whole share.
    std::atomic<int> next_run{n_threads}, next_range{n_threads};
    const bool stamped = profiling();
    if (stamped) region_stamps().start(n_threads);
#pragma omp parallel num_threads(n_threads)
    {
        const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        if (stamped) region_stamps().mark(tid, 0);
        // parts tid, tid + nt, ... below n_threads (a smaller team than asked takes the rest in turn), then
        // the parts past n_threads as they come
        const auto take = [&](std::atomic<int>& next, auto&& run) {
            for (int part = tid; part < n_threads; part += nt) run(part);
            for (int part = next.fetch_add(1, std::memory_order_relaxed); part < n_runs;
                 part = next.fetch_add(1, std::memory_order_relaxed)) {
                run(part);
            }
        };
        take(next_run, [&](int part) {
            const int64_t g0 = s.bounds[static_cast<size_t>(part)], g1 = s.bounds[static_cast<size_t>(part) + 1];
            for (int64_t g = g0; g < g1;) {
                const int64_t i = g / groups_ff, first = g % groups_ff;
                const int64_t last = std::min(groups_ff, first + (g1 - g));  // within this expert
                gate_up_rows(hp, w, s.active[static_cast<size_t>(i)], x, *x_up, first * kRowGroup,
                             std::min(n_ff, last * kRowGroup), n_ff, n_batch, s);
                g += last - first;
            }
        });
        if (stamped) region_stamps().mark(tid, 1);
#pragma omp barrier
        s.act_h.convert_rows(n_slots * static_cast<int64_t>(tid) / nt, n_slots * static_cast<int64_t>(tid + 1) / nt);
#pragma omp barrier
        if (stamped) region_stamps().mark(tid, 2);
        take(next_range, [&](int part) {
            const int64_t r0 = std::min(n_embd, groups_embd * part / n_runs * kRowGroup);
            const int64_t r1 = std::min(n_embd, groups_embd * (part + 1) / n_runs * kRowGroup);
            if (r0 < r1) down_rows(w, r, s, out, r0, r1, n_embd, n_tokens, K, n_batch);
        });
        if (stamped) region_stamps().mark(tid, 3);
    }
    if (stamped) region_stamps().report("experts:", {"gate/up", "barrier+convert+barrier", "down+sum"});
}

}  // namespace runtime::cpu
