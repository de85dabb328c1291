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

// Decode-size batches (at most this many tokens, so at most one tile of tokens per expert) take the
// schedule of run_decode.
constexpr int kDecodeTokens = quant::kGemmCols;

// The down rows of one expert that a decode-size batch hands out at a time: a multiple of kRowGroup
// (Q4_K rows of 768: 55 KB in one stretch, long enough for the prefetchers).
constexpr int64_t kDownItemRows = 128;

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

// Down rows [r0, r1) of expert e for its slots (gpt-oss: with the expert's bias, before the weighting).
void expert_down_rows(const LayerWeights& w, int32_t e, CpuExecutor::MoeScratch& s, int64_t r0, int64_t r1,
                      int64_t n_embd, int n_batch) {
    const int32_t* slots = s.expert_slots.data() + static_cast<size_t>(e) * n_batch;
    const int n_tok = s.expert_count[static_cast<size_t>(e)];
    const int64_t step = rows_per_call(n_tok, r1 - r0);
    for (int64_t a = r0; a < r1; a += step) {
        matmul_rows(w.down_exps, e, s.act_h, slots, slots, n_tok, a, std::min(r1, a + step), s.down.data(), n_embd);
    }
    if (w.down_exps_b.empty()) return;
    for (int i = 0; i < n_tok; ++i) {
        add_expert_bias(s.down.data() + static_cast<size_t>(slots[i]) * n_embd + r0, 0, &e, 1,
                        w.down_exps_b.data() + r0, n_embd, r1 - r0);
    }
}

// Output columns [r0, r1) of every token: the weighted sum of its experts' down rows, in slot order.
void weighted_sums(const Routing& r, const CpuExecutor::MoeScratch& s, const Tensor& out, int64_t r0, int64_t r1,
                   int64_t n_embd, int n_tokens, int K) {
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

// Output rows [r0, r1): the down rows of every active expert for its slots, then each token's weighted
// sum of its experts' rows.
void down_rows(const LayerWeights& w, const Routing& r, CpuExecutor::MoeScratch& s, const Tensor& out, int64_t r0,
               int64_t r1, int64_t n_embd, int n_tokens, int K, int n_batch) {
    for (int i = 0; i < s.n_active; ++i) expert_down_rows(w, s.active[static_cast<size_t>(i)], s, r0, r1, n_embd, n_batch);
    weighted_sums(r, s, out, r0, r1, n_embd, n_tokens, K);
}

inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// The gate/up rows of run `part` (row groups bounds[part] .. bounds[part + 1], expert by expert in
// s.active order), with the activation applied.
void gate_up_run(const HParams& hp, const LayerWeights& w, const Activations& x, const Activations& x_up, int part,
                 int64_t groups_ff, int64_t n_ff, int n_batch, CpuExecutor::MoeScratch& s) {
    const int64_t g0 = s.bounds[static_cast<size_t>(part)], g1 = s.bounds[static_cast<size_t>(part) + 1];
    for (int64_t g = g0; g < g1;) {
        const int64_t i = g / groups_ff, first = g % groups_ff;
        const int64_t last = std::min(groups_ff, first + (g1 - g));  // within this expert
        gate_up_rows(hp, w, s.active[static_cast<size_t>(i)], x, x_up, first * kRowGroup,
                     std::min(n_ff, last * kRowGroup), n_ff, n_batch, s);
        g += last - first;
    }
}

// Decode-size batches. Each thread runs its share of the gate/up rows (contiguous, of about equal cost,
// as for prompts); an expert is ready for its down rows once every share that holds its gate/up rows is
// done, and the thread that finishes the last of those converts its hidden rows for the down weights.
// Then the threads take the down rows of ready experts, kDownItemRows at a time, as they come free: no
// thread waits for the slowest share before it streams down rows, and a slow thread holds up the step
// by at most one item. One barrier before the weighted sums. Every row is computed as by the prompt
// schedule (whole runs of one expert, items starting at multiples of kRowGroup), so the results do not
// depend on the thread count.
void run_decode(const HParams& hp, const LayerWeights& w, const Activations& x, const Activations& x_up,
                const Routing& r, const Tensor& out, int n_threads, int n_batch, CpuExecutor::MoeScratch& s) {
    const int64_t n_embd = hp.n_embd, n_ff = hp.n_ff_exp;
    const int K = r.k, n_tokens = r.n_tokens, n_active = s.n_active;
    const int64_t groups_ff = (n_ff + kRowGroup - 1) / kRowGroup;
    const int n_items = static_cast<int>((n_embd + kDownItemRows - 1) / kDownItemRows);
    split_gate_up(groups_ff, n_threads, s);
    CpuExecutor::MoeScratch::Progress* progress = s.progress.get();
    for (int i = 0; i < n_active; ++i) {
        progress[i].pending.store(0, std::memory_order_relaxed);
        progress[i].ready.store(0, std::memory_order_relaxed);
        progress[i].next_down.store(0, std::memory_order_relaxed);
    }
    // the experts whose gate/up rows run `part` holds: [first, last]
    const auto experts_of = [&](int part) {
        const int64_t g0 = s.bounds[static_cast<size_t>(part)], g1 = s.bounds[static_cast<size_t>(part) + 1];
        return std::make_pair(static_cast<int>(g0 / groups_ff), static_cast<int>((g1 - 1) / groups_ff));
    };
    for (int part = 0; part < n_threads; ++part) {
        if (s.bounds[static_cast<size_t>(part)] == s.bounds[static_cast<size_t>(part) + 1]) continue;
        const auto [first, last] = experts_of(part);
        for (int i = first; i <= last; ++i) progress[i].pending.fetch_add(1, std::memory_order_relaxed);
    }
    const bool stamped = profiling();
    if (stamped) region_stamps().start(n_threads);
#pragma omp parallel num_threads(n_threads)
    {
        const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        if (stamped) region_stamps().mark(tid, 0);
        for (int part = tid; part < n_threads; part += nt) {  // a smaller team than asked takes the rest in turn
            if (s.bounds[static_cast<size_t>(part)] == s.bounds[static_cast<size_t>(part) + 1]) continue;
            gate_up_run(hp, w, x, x_up, part, groups_ff, n_ff, n_batch, s);
            const auto [first, last] = experts_of(part);
            for (int i = first; i <= last; ++i) {
                if (progress[i].pending.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
                const int32_t e = s.active[static_cast<size_t>(i)];
                const int32_t* slots = s.expert_slots.data() + static_cast<size_t>(e) * n_batch;
                for (int j = 0; j < s.expert_count[static_cast<size_t>(e)]; ++j) {
                    s.act_h.convert_rows(slots[j], slots[j] + 1);
                }
                progress[i].ready.store(1, std::memory_order_release);
            }
        }
        if (stamped) region_stamps().mark(tid, 1);
        // the down items of ready experts, from this thread's first expert on
        const int start = n_active * tid / nt;
        for (bool waiting = true; waiting;) {
            waiting = false;
            for (int k = 0; k < n_active; ++k) {
                const int i = (start + k) % n_active;
                if (progress[i].next_down.load(std::memory_order_relaxed) >= n_items) continue;
                if (!progress[i].ready.load(std::memory_order_acquire)) {
                    waiting = true;
                    continue;
                }
                for (int d = progress[i].next_down.fetch_add(1, std::memory_order_relaxed); d < n_items;
                     d = progress[i].next_down.fetch_add(1, std::memory_order_relaxed)) {
                    expert_down_rows(w, s.active[static_cast<size_t>(i)], s, d * kDownItemRows,
                                     std::min(n_embd, (d + 1) * kDownItemRows), n_embd, n_batch);
                }
            }
            if (waiting) spin_pause();
        }
        if (stamped) region_stamps().mark(tid, 2);
#pragma omp barrier
        weighted_sums(r, s, out, n_embd * tid / nt, n_embd * (tid + 1) / nt, n_embd, n_tokens, K);
        if (stamped) region_stamps().mark(tid, 3);
    }
    if (stamped) region_stamps().report("experts:", {"gate/up", "down as ready", "barrier+sums"});
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
    s.act_h.set(s.h_gate.data(), n_slots, n_ff, n_ff);
    s.act_h.format(w.down_exps.type);
    if (n_tokens <= kDecodeTokens) {
        run_decode(hp, w, x, *x_up, r, out, n_threads, n_batch, s);
        return;
    }
    const int64_t groups_ff = (n_ff + kRowGroup - 1) / kRowGroup;
    const int64_t groups_embd = (n_embd + kRowGroup - 1) / kRowGroup;
    split_gate_up(groups_ff, n_threads, s);

    // One parallel region, two barriers: the gate and up rows of every active expert with the
    // activation applied (a contiguous run of about equal cost per thread); the hidden rows converted
    // for the down weights; then a range of the output rows per thread: the down rows of every active
    // expert and the weighted sum of each token's experts, which needs no further wait.
    const bool stamped = profiling();
    if (stamped) region_stamps().start(n_threads);
#pragma omp parallel num_threads(n_threads)
    {
        const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        if (stamped) region_stamps().mark(tid, 0);
        // parts tid, tid + nt, ...: a smaller team than asked takes the rest in turn
        for (int part = tid; part < n_threads; part += nt) gate_up_run(hp, w, x, *x_up, part, groups_ff, n_ff, n_batch, s);
        if (stamped) region_stamps().mark(tid, 1);
#pragma omp barrier
        s.act_h.convert_rows(n_slots * static_cast<int64_t>(tid) / nt, n_slots * static_cast<int64_t>(tid + 1) / nt);
#pragma omp barrier
        if (stamped) region_stamps().mark(tid, 2);
        for (int part = tid; part < n_threads; part += nt) {
            const int64_t r0 = std::min(n_embd, groups_embd * part / n_threads * kRowGroup);
            const int64_t r1 = std::min(n_embd, groups_embd * (part + 1) / n_threads * kRowGroup);
            if (r0 < r1) down_rows(w, r, s, out, r0, r1, n_embd, n_tokens, K, n_batch);
        }
        if (stamped) region_stamps().mark(tid, 3);
    }
    if (stamped) region_stamps().report("experts:", {"gate/up", "barrier+convert+barrier", "down+sum"});
}

}  // namespace runtime::cpu
