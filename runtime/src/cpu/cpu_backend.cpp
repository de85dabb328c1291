#include "cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

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
    scores.resize(T * static_cast<size_t>(shape.n_ctx));
    vrow.resize(T * hp.head_dim_v);
    // room for one query head in any vec_dot type (f32 is the widest)
    qpack_stride = hp.head_dim_k * sizeof(float);
    qpack.resize(T * qpack_stride);

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
                 vbytes(up) + vbytes(scores) + vbytes(vrow) + vbytes(qpack) + vbytes(router) + vbytes(sel_weight) +
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
    matmul(w.wq, 0, ws.act_xn, ws.q.data(), nq, nth);
    matmul(w.wk, 0, ws.act_xn, ws.k.data(), nk, nth);
    matmul(w.wv, 0, ws.act_xn, ws.v.data(), nv, nth);
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

    const GgmlType tk = kv.type_k(), tv = kv.type_v();
    const bool k_float = is_float_type(tk), v_float = is_float_type(tv);
    const GgmlType q_type = k_float ? tk : quant::vec_dot_type(tk);
    const int group = static_cast<int>(hp.n_head / hp.n_head_kv);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int n_pairs = B * static_cast<int>(hp.n_head);
    const size_t kh_bytes = kv.k_head_bytes(), vh_bytes = kv.v_head_bytes();

#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
    for (int pair = 0; pair < n_pairs; ++pair) {
        const int tid = omp_get_thread_num();
        const int t = pair / static_cast<int>(hp.n_head);
        const int h = pair % static_cast<int>(hp.n_head);
        const int g = h / group;
        const int n_kv = batch.pos0 + t + 1;  // causal: positions up to this token's own
        const float* qh = ws.q.data() + t * nq + h * hd;
        float* sc = ws.scores.data() + static_cast<size_t>(tid) * kv.n_ctx();
        uint8_t* qp = ws.qpack.data() + static_cast<size_t>(tid) * ws.qpack_stride;
        if (!k_float) quant::quantize_activation_row(q_type, qh, qp, hd);
        for (int p = 0; p < n_kv; ++p) {
            const uint8_t* kr = kv.k_row(il, p) + static_cast<size_t>(g) * kh_bytes;
            sc[p] = scale * (k_float ? dot_float_row(tk, kr, qh, hd) : quant::vec_dot(tk, hd, kr, qp));
        }
        softmax(sc, n_kv);
        float* out = ws.attn.data() + t * hp.n_embd_attn_out() + h * hdv;
        std::fill(out, out + hdv, 0.0f);
        float* vtmp = ws.vrow.data() + static_cast<size_t>(tid) * hdv;
        for (int p = 0; p < n_kv; ++p) {
            const uint8_t* vr = kv.v_row(il, p) + static_cast<size_t>(g) * vh_bytes;
            if (v_float) {
                axpy_float_row(tv, vr, sc[p], out, hdv);
            } else {
                quant::dequantize_row(tv, vr, vtmp, hdv);
                for (int d = 0; d < hdv; ++d) out[d] += sc[p] * vtmp[d];
            }
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
    matmul(w.ffn_gate, 0, ws.act_xn, ws.gate.data(), n_ff, ws.n_threads);
    matmul(w.ffn_up, 0, ws.act_xn, ws.up.data(), n_ff, ws.n_threads);
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
