// qwen35moe's blocks over the executors' operations (as llama.cpp's qwen35moe graph and transformers'
// Qwen3_5Moe compute them): gated full attention, Gated DeltaNet layers and the shared expert.
#include "forward.h"

namespace runtime {

void mixer_block(Executor& ex, const HParams& hp, const LayerWeights& L, KvCache& kv, RecurrentState& rs, int il,
                 const Tensor& x) {
    if (hp.arch != Arch::Qwen35Moe) return attention_block(ex, hp, L, kv, il, x);
    if (hp.is_recurrent(static_cast<uint32_t>(il))) return delta_net_block(ex, hp, L, rs, il, x);
    gated_attention_block(ex, hp, L, kv, il, x);
}

// attn_q yields, per head, the query and a gate; the attention's output is multiplied by the gate's
// sigmoid before the output projection. Q and K are RMS-normalised per head, then RoPE turns the
// first n_rot dimensions of each head (Qwen3.5's mrope sections all see the one text position).
void gated_attention_block(Executor& ex, const HParams& hp, const LayerWeights& L, KvCache& kv, int il, const Tensor& x) {
    const int n = static_cast<int>(x.rows);
    const Tensor xn = ex.buffer(Buf::XN, n), qg = ex.buffer(Buf::QGate, n);
    const Tensor q = ex.buffer(Buf::Q, n), gate = ex.buffer(Buf::AttnGate, n);
    const Tensor k = ex.buffer(Buf::K, n), v = ex.buffer(Buf::V, n);
    ex.rms_norm(x, L.attn_norm.data(), hp.rms_eps, xn);
    const Executor::MatmulOut qkv[] = {{&L.wq, qg}, {&L.wk, k}, {&L.wv, v}};
    ex.matmul(qkv, xn);
    const int hd = static_cast<int>(hp.head_dim_k);
    ex.split_gated_q(qg, hd, q, gate);
    ex.norm_rope_qk(q, L.q_norm.data(), k, L.k_norm.data(), hd, hp.rms_eps);
    ex.store_kv(kv, il, k, v);
    const Tensor attn = ex.buffer(Buf::Attn, n), proj = ex.buffer(Buf::Proj, n);
    ex.attention(kv, il, q, attn);
    ex.sigmoid_mul(attn, gate);
    const Executor::MatmulOut o[] = {{&L.wo, proj}};
    ex.matmul(o, attn);
    ex.add(x, proj);
}

void delta_net_block(Executor& ex, const HParams& hp, const LayerWeights& L, RecurrentState& rs, int il, const Tensor& x) {
    const int n = static_cast<int>(x.rows);
    const Tensor xn = ex.buffer(Buf::XN, n), proj = ex.buffer(Buf::Proj, n);
    ex.rms_norm(x, L.attn_norm.data(), hp.rms_eps, xn);
    ex.delta_net(L, rs, il, xn, proj);
    ex.add(x, proj);
}

void shared_expert(Executor& ex, const LayerWeights& L, const Tensor& xn, const Tensor& out) {
    const int n = static_cast<int>(xn.rows);
    const int64_t width = L.up_shexp.n_out;
    // the gate/up buffers may be wider (a dense FFN's width): views of the shared expert's width
    const Tensor g0 = ex.buffer(Buf::Gate, n), u0 = ex.buffer(Buf::Up, n);
    const Tensor g{g0.data, n, width, g0.ld, g0.device}, u{u0.data, n, width, u0.ld, u0.device};
    const Executor::MatmulOut gu[] = {{&L.gate_shexp, g}, {&L.up_shexp, u}};
    ex.matmul(gu, xn);
    ex.swiglu(g, u, g);
    const Executor::MatmulOut down[] = {{&L.down_shexp, out}};
    ex.matmul(down, g);
    const Tensor logit = ex.buffer(Buf::SharedGate, n);
    const Executor::MatmulOut gate[] = {{&L.gate_inp_shexp, logit}};
    ex.matmul(gate, xn);
    ex.sigmoid_mul(out, logit);
}

}  // namespace runtime
