#include "cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops.h"
#include "quant/quant.h"
#include "runtime/kv_cache.h"

namespace runtime::cpu {

using gguf::GgmlType;

namespace {

template <typename T>
uint64_t vbytes(const std::vector<T>& v) {
    return v.size() * sizeof(T);
}

void add_bias(float* y, const std::vector<float>& b, int n_tokens, int64_t n) {
    if (b.empty()) return;
    for (int t = 0; t < n_tokens; ++t) {
        for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[static_cast<size_t>(i)];
    }
}

// One head of a cached key or value row in f32, whatever the cache type.
void head_to_f32(GgmlType type, const uint8_t* src, float* dst, int n) {
    if (type == GgmlType::F16) {
        f16_to_f32_row(reinterpret_cast<const uint16_t*>(src), dst, n);
    } else if (type == GgmlType::F32) {
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else {
        quant::dequantize_row(type, src, dst, n);
    }
}

}  // namespace

CpuWorkspace::CpuWorkspace(const HParams& hp, const ContextShape& shape)
    : n_threads(shape.n_threads), n_batch(shape.n_batch) {
    const size_t B = static_cast<size_t>(shape.n_batch);
    const size_t T = static_cast<size_t>(shape.n_threads);
    xn.resize(B * hp.n_embd);
    q.resize(B * hp.n_embd_q());
    k.resize(B * hp.n_embd_k());
    v.resize(B * hp.n_embd_v());
    attn.resize(B * hp.n_embd_attn_out());
    proj.resize(B * hp.n_embd);
    const size_t C = static_cast<size_t>(shape.n_ctx);
    scores_ld = (C + kAttendPad - 1) / kAttendPad * kAttendPad;
    scores.resize(T * scores_ld);
    krow.resize(T * hp.head_dim_k);
    // a row length that is not a power of two: rows 2^k bytes apart would share a few L1 sets
    kt_ld = scores_ld + 16;
    kt.resize(static_cast<size_t>(hp.n_head_kv) * hp.head_dim_k * kt_ld);
    vf.resize(static_cast<size_t>(hp.n_head_kv) * C * hp.head_dim_v);

    act_xn.reserve(static_cast<int64_t>(B), hp.n_embd);
    act_attn.reserve(static_cast<int64_t>(B), hp.n_embd_attn_out());
    if (hp.n_ff > 0 && !hp.is_moe()) {
        gate.resize(B * hp.n_ff);
        up.resize(B * hp.n_ff);
        act_ffn.reserve(static_cast<int64_t>(B), hp.n_ff);
    }
    if (hp.is_moe()) {
        const size_t K = hp.n_expert_used;
        const size_t E = hp.n_expert;
        router.resize(B * E);
        sel_weight.resize(B * K);
        sel_expert.resize(B * K);
        h_gate.resize(B * K * hp.n_ff_exp);
        h_up.resize(B * K * hp.n_ff_exp);
        down.resize(B * K * hp.n_embd);
        expert_count.resize(E);
        expert_tokens.resize(E * B);
        expert_slots.resize(E * B);
        const size_t blocks_ff = (hp.n_ff_exp + 15) / 16, blocks_embd = (hp.n_embd + 15) / 16;
        items.resize(E * std::max(2 * blocks_ff, blocks_embd));
        act_h.reserve(static_cast<int64_t>(B * K), hp.n_ff_exp);
    }
}

uint64_t CpuWorkspace::bytes() const {
    uint64_t b = vbytes(xn) + vbytes(q) + vbytes(k) + vbytes(v) + vbytes(attn) + vbytes(proj) + vbytes(gate) +
                 vbytes(up) + vbytes(scores) + vbytes(krow) + vbytes(kt) + vbytes(vf) + vbytes(router) + vbytes(sel_weight) +
                 vbytes(h_gate) + vbytes(h_up) + vbytes(down) + vbytes(sel_expert) + vbytes(expert_count) +
                 vbytes(expert_tokens) + vbytes(expert_slots) + vbytes(items);
    return b + act_xn.bytes() + act_attn.bytes() + act_ffn.bytes() + act_h.bytes();
}

std::unique_ptr<Workspace> CpuBackend::make_workspace(const HParams& hp, const ContextShape& shape) const {
    return std::make_unique<CpuWorkspace>(hp, shape);
}

void CpuBackend::attention(const HParams& hp, const LayerWeights& w, KvCache& kv, int il, float* x,
                           const BatchInfo& batch, Workspace& base) const {
    auto& ws = static_cast<CpuWorkspace&>(base);
    const int B = batch.n_tokens;
    const int nth = ws.n_threads;
    const int64_t n_embd = hp.n_embd;
    const int hd = static_cast<int>(hp.head_dim_k);
    const int hdv = static_cast<int>(hp.head_dim_v);
    const int64_t nq = hp.n_embd_q(), nk = hp.n_embd_k(), nv = hp.n_embd_v();

    for (int t = 0; t < B; ++t) {
        rms_norm(x + t * n_embd, w.attn_norm.data(), ws.xn.data() + t * n_embd, n_embd, hp.rms_eps);
    }
    ws.act_xn.set(ws.xn.data(), B, n_embd, n_embd);
    matmul_many({{w.wq, ws.q.data(), nq}, {w.wk, ws.k.data(), nk}, {w.wv, ws.v.data(), nv}}, ws.act_xn, nth);
    add_bias(ws.q.data(), w.bq, B, nq);
    add_bias(ws.k.data(), w.bk, B, nk);
    add_bias(ws.v.data(), w.bv, B, nv);

    const int half = static_cast<int>(hp.n_rot / 2);
    for (int t = 0; t < B; ++t) {
        const float* c = batch.rope_cos + t * half;
        const float* s = batch.rope_sin + t * half;
        for (uint32_t h = 0; h < hp.n_head; ++h) {
            float* qh = ws.q.data() + t * nq + h * hd;
            if (!w.q_norm.empty()) rms_norm(qh, w.q_norm.data(), qh, hd, hp.rms_eps);
            rope(qh, c, s, static_cast<int>(hp.n_rot), hp.rope_mode);
        }
        for (uint32_t h = 0; h < hp.n_head_kv; ++h) {
            float* kh = ws.k.data() + t * nk + h * hd;
            if (!w.k_norm.empty()) rms_norm(kh, w.k_norm.data(), kh, hd, hp.rms_eps);
            rope(kh, c, s, static_cast<int>(hp.n_rot), hp.rope_mode);
        }
    }
    kv.store(il, batch.pos0, B, ws.k.data(), ws.v.data());

    // the cached keys and values this batch reads, per KV head in f32: keys transposed so that scores
    // vectorize across positions; converted once per layer, then shared by every query head of the group
    const GgmlType tk = kv.type_k(), tv = kv.type_v();
    const int n_kv_max = batch.pos0 + B;
    const int n_head_kv = static_cast<int>(hp.n_head_kv);
    const int64_t ld = ws.kt_ld;
    constexpr int kConvert = 64;  // positions per conversion item
    const int n_chunks = (n_kv_max + kConvert - 1) / kConvert;
    const int group = static_cast<int>(hp.n_head / hp.n_head_kv);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int n_pairs = B * static_cast<int>(hp.n_head);
    const size_t kh_bytes = kv.k_head_bytes(), vh_bytes = kv.v_head_bytes();

#pragma omp parallel num_threads(nth)
    {
        const int tid = omp_get_thread_num();
        float* krow = ws.krow.data() + static_cast<size_t>(tid) * hd;
#pragma omp for schedule(static)
        for (int item = 0; item < n_head_kv * n_chunks; ++item) {
            const int g = item / n_chunks;
            const int p0 = item % n_chunks * kConvert, p1 = std::min(n_kv_max, p0 + kConvert);
            float* kt = ws.kt.data() + static_cast<size_t>(g) * hd * ld;
            float* vf = ws.vf.data() + static_cast<size_t>(g) * kv.n_ctx() * hdv;
            for (int p = p0; p < p1; ++p) {
                head_to_f32(tk, kv.k_row(il, p) + g * kh_bytes, krow, hd);
                for (int d = 0; d < hd; ++d) kt[d * ld + p] = krow[d];
                head_to_f32(tv, kv.v_row(il, p) + g * vh_bytes, vf + static_cast<int64_t>(p) * hdv, hdv);
            }
        }
#pragma omp for schedule(dynamic, 1)
        for (int pair = 0; pair < n_pairs; ++pair) {
            const int t = pair / static_cast<int>(hp.n_head);
            const int h = pair % static_cast<int>(hp.n_head);
            const int g = h / group;
            const int n_kv = batch.pos0 + t + 1;  // causal: positions up to this token's own
            attend(ws.q.data() + t * nq + h * hd, scale, ws.kt.data() + static_cast<size_t>(g) * hd * ld, ld, hd,
                   ws.vf.data() + static_cast<size_t>(g) * kv.n_ctx() * hdv, hdv, n_kv,
                   ws.scores.data() + static_cast<size_t>(tid) * ws.scores_ld,
                   ws.attn.data() + t * hp.n_embd_attn_out() + h * hdv);
        }
    }

    ws.act_attn.set(ws.attn.data(), B, hp.n_embd_attn_out(), hp.n_embd_attn_out());
    matmul(w.wo, 0, ws.act_attn, ws.proj.data(), n_embd, nth);
    add_bias(ws.proj.data(), w.bo, B, n_embd);
    for (int64_t i = 0; i < B * n_embd; ++i) x[i] += ws.proj[static_cast<size_t>(i)];
}

void CpuBackend::feed_forward(const HParams& hp, const LayerWeights& w, float* x, const BatchInfo& batch,
                              Workspace& base) const {
    auto& ws = static_cast<CpuWorkspace&>(base);
    const int B = batch.n_tokens;
    if (w.is_moe()) {
        moe_ffn(hp, w, x, B, ws);
        return;
    }
    const int64_t n_embd = hp.n_embd, n_ff = hp.n_ff;
    for (int t = 0; t < B; ++t) {
        rms_norm(x + t * n_embd, w.ffn_norm.data(), ws.xn.data() + t * n_embd, n_embd, hp.rms_eps);
    }
    ws.act_xn.set(ws.xn.data(), B, n_embd, n_embd);
    matmul_many({{w.ffn_gate, ws.gate.data(), n_ff}, {w.ffn_up, ws.up.data(), n_ff}}, ws.act_xn, ws.n_threads);
    swiglu(ws.gate.data(), ws.up.data(), ws.gate.data(), B * n_ff);
    ws.act_ffn.set(ws.gate.data(), B, n_ff, n_ff);
    matmul(w.ffn_down, 0, ws.act_ffn, ws.proj.data(), n_embd, ws.n_threads);
    for (int64_t i = 0; i < B * n_embd; ++i) x[i] += ws.proj[static_cast<size_t>(i)];
}

void CpuBackend::output(const HParams& hp, const ModelWeights& w, const float* x, int n_rows, float* logits,
                        Workspace& base) const {
    auto& ws = static_cast<CpuWorkspace&>(base);
    const int64_t n_embd = hp.n_embd;
    for (int t = 0; t < n_rows; ++t) {
        rms_norm(x + t * n_embd, w.output_norm.data(), ws.xn.data() + t * n_embd, n_embd, hp.rms_eps);
    }
    ws.act_xn.set(ws.xn.data(), n_rows, n_embd, n_embd);
    matmul(w.output, 0, ws.act_xn, logits, w.output.n_out, ws.n_threads);
}

}  // namespace runtime::cpu
