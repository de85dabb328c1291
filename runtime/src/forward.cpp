#include "forward.h"

#include <algorithm>

#include "cpu/profile.h"
#include "runtime/error.h"

namespace runtime {

void Executor::attention_masked(const KvCache& kv, int il, const Tensor& q, const Tensor& out, const AttentionMask& mask) {
    if (mask.plain()) return attention(kv, il, q, out);
    throw Error("the " + device().name() + " backend has no sliding-window or sink attention");
}

void Executor::split_gated_q(const Tensor&, int, const Tensor&, const Tensor&) {
    throw Error("the " + device().name() + " backend has no gated attention");
}

void Executor::sigmoid_mul(const Tensor&, const Tensor&) {
    throw Error("the " + device().name() + " backend has no sigmoid gating");
}

void Executor::delta_net(const LayerWeights&, RecurrentState&, int, const Tensor&, const Tensor&) {
    throw Error("the " + device().name() + " backend has no Gated DeltaNet layers");
}

int64_t buffer_width(const HParams& hp, Buf id, int64_t n_vocab) {
    const int64_t n_ff = hp.is_moe() ? 0 : hp.n_ff;
    switch (id) {
        case Buf::X:
        case Buf::XN:
        case Buf::Proj: return hp.n_embd;
        case Buf::Q: return hp.n_embd_q();
        case Buf::K: return hp.n_embd_k();
        case Buf::V: return hp.n_embd_v();
        case Buf::Attn: return hp.n_embd_attn_out();
        case Buf::Gate:
        case Buf::Up: return std::max<int64_t>(n_ff, hp.n_ff_shexp);
        case Buf::RouterLogits: return hp.n_expert;
        case Buf::Logits: return n_vocab;
        case Buf::QGate: return hp.attn_output_gate ? 2 * hp.n_embd_q() : 0;
        case Buf::AttnGate: return hp.attn_output_gate ? hp.n_embd_q() : 0;
        case Buf::Shared: return hp.n_ff_shexp ? hp.n_embd : 0;
        case Buf::SharedGate: return hp.n_ff_shexp ? 1 : 0;
        case Buf::Count: break;
    }
    return 0;
}

uint64_t expert_slot_bytes(const LayerWeights& L) {
    uint64_t total = 0;
    for (const Weight* w : {&L.gate_exps, &L.up_exps, &L.down_exps}) {
        const uint64_t bytes = static_cast<uint64_t>(w->n_mat) * static_cast<uint64_t>(w->n_out) * w->row_bytes;
        total += device_aligned(bytes);
    }
    return total;
}

Tensor Transfers::move(Executor& from, const Tensor& src, Executor& to, Buf id) {
    if (from.device() == to.device()) return src;
    Tensor dst = to.buffer(id, static_cast<int>(src.rows));
    if (to.device().is_cpu()) {
        from.download(src, dst);
    } else if (from.device().is_cpu()) {
        to.upload(src, dst);
    } else {
        Tensor host{rows_.data(), src.rows, src.cols, src.cols, Device::cpu()};
        from.download(src, host);
        to.upload(host, dst);
    }
    return dst;
}

Routing Transfers::move(Executor& from, const Routing& src, Executor& to) {
    if (from.device() == to.device()) return src;
    Routing dst = to.routing(src.n_tokens, src.k);
    if (to.device().is_cpu()) {
        from.download(src, dst);
    } else if (from.device().is_cpu()) {
        to.upload(src, dst);
    } else {
        Routing host{ids_.data(), weights_.data(), src.n_tokens, src.k, Device::cpu()};
        from.download(src, host);
        to.upload(host, dst);
    }
    return dst;
}

std::pair<Tensor, Routing> Transfers::move(Executor& from, const Tensor& src, const Routing& r, Executor& to, Buf id) {
    if (from.device() == to.device() || !to.device().is_cpu()) return {move(from, src, to, id), move(from, r, to)};
    // into `from`'s page-locked staging, which the host's executor reads like its own rows
    const Tensor dst = from.host_buffer(id, static_cast<int>(src.rows));
    const Routing rdst = from.host_routing(r.n_tokens, r.k);
    from.download(src, dst, r, rdst);
    return {dst, rdst};
}

Tensor Transfers::output(Executor& on, Executor& back_to, Buf id, int rows) {
    if (on.device().is_cpu() && !back_to.device().is_cpu()) return back_to.host_buffer(id, rows);
    return on.buffer(id, rows);
}

void attention_block(Executor& ex, const HParams& hp, const LayerWeights& L, KvCache& kv, int il, const Tensor& x) {
    const int n = static_cast<int>(x.rows);
    const Tensor xn = ex.buffer(Buf::XN, n);
    const Tensor q = ex.buffer(Buf::Q, n), k = ex.buffer(Buf::K, n), v = ex.buffer(Buf::V, n);
    ex.rms_norm(x, L.attn_norm.data(), hp.rms_eps, xn);
    const Executor::MatmulOut qkv[] = {{&L.wq, q}, {&L.wk, k}, {&L.wv, v}};
    ex.matmul(qkv, xn);
    if (!L.bq.empty()) ex.add_bias(q, L.bq.data());
    if (!L.bk.empty()) ex.add_bias(k, L.bk.data());
    if (!L.bv.empty()) ex.add_bias(v, L.bv.data());
    ex.norm_rope_qk(q, L.q_norm.empty() ? nullptr : L.q_norm.data(), k, L.k_norm.empty() ? nullptr : L.k_norm.data(),
                    static_cast<int>(hp.head_dim_k), hp.rms_eps);
    ex.store_kv(kv, il, k, v);

    const Tensor attn = ex.buffer(Buf::Attn, n), proj = ex.buffer(Buf::Proj, n);
    const AttentionMask mask{static_cast<int>(hp.window(static_cast<uint32_t>(il))),
                             L.attn_sinks.empty() ? nullptr : L.attn_sinks.data()};
    if (mask.plain()) {
        ex.attention(kv, il, q, attn);
    } else {
        ex.attention_masked(kv, il, q, attn, mask);
    }
    const Executor::MatmulOut o[] = {{&L.wo, proj}};
    ex.matmul(o, attn);
    if (!L.bo.empty()) ex.add_bias(proj, L.bo.data());
    ex.add(x, proj);
}

void ffn_block(Executor& ffn, Executor& experts, Transfers& transfers, const HParams& hp, const LayerWeights& L,
               const Tensor& x) {
    const int n = static_cast<int>(x.rows);
    if (L.is_moe()) {
        const MoeRouted m = moe_buffers(ffn, hp, L, n);
        moe_route(ffn, hp, L, x, m);
        moe_experts(ffn, experts, transfers, L, x, m);
        return;
    }
    const Tensor xn = ffn.buffer(Buf::XN, n), proj = ffn.buffer(Buf::Proj, n);
    ffn.rms_norm(x, L.ffn_norm.data(), hp.rms_eps, xn);
    const Tensor gate = ffn.buffer(Buf::Gate, n), up = ffn.buffer(Buf::Up, n);
    const Executor::MatmulOut gu[] = {{&L.ffn_gate, gate}, {&L.ffn_up, up}};
    ffn.matmul(gu, xn);
    ffn.swiglu(gate, up, gate);
    const Executor::MatmulOut down[] = {{&L.ffn_down, proj}};
    ffn.matmul(down, gate);
    ffn.add(x, proj);
}

MoeRouted moe_buffers(Executor& ffn, const HParams& hp, const LayerWeights& L, int n) {
    MoeRouted m;
    m.xn = ffn.buffer(Buf::XN, n);
    m.shared = L.up_shexp.present() ? ffn.buffer(Buf::Shared, n) : Tensor{};
    m.r = ffn.routing(n, static_cast<int>(hp.n_expert_used));
    return m;
}

void moe_route(Executor& ffn, const HParams& hp, const LayerWeights& L, const Tensor& x, const MoeRouted& m) {
    const int n = static_cast<int>(x.rows);
    ffn.rms_norm(x, L.ffn_norm.data(), hp.rms_eps, m.xn);
    // qwen35moe's shared expert reads the same normalised rows, before the routed experts run
    if (L.up_shexp.present()) shared_expert(ffn, L, m.xn, m.shared);
    const Tensor logits = ffn.buffer(Buf::RouterLogits, n);
    const Executor::MatmulOut router[] = {{&L.gate_inp, logits}};
    ffn.matmul(router, m.xn);
    if (!L.gate_inp_b.empty()) ffn.add_bias(logits, L.gate_inp_b.data());
    const int k = static_cast<int>(hp.n_expert_used);
    ffn.route(logits, {k, hp.expert_weights_norm, hp.expert_weights_scale, hp.router_softmax_topk}, m.r);
}

void moe_experts(Executor& ffn, Executor& experts, Transfers& transfers, const LayerWeights& L, const Tensor& x,
                 const MoeRouted& m) {
    const int n = static_cast<int>(x.rows);
    // GGUF_PROFILE, experts on another device: the wait for the work queued before them (one more wait,
    // only while profiling), the rows' trip there, and the host time of queueing the sum's way back
    const bool timed = cpu::profiling() && ffn.device() != experts.device();
    int64_t t = timed ? cpu::profile_clock() : 0;
    const auto lap = [&](const char* part) {
        if (!timed) return;
        const int64_t now = cpu::profile_clock();
        cpu::profile_part(part, now - t);
        t = now;
    };
    if (timed) ffn.sync();
    lap("experts elsewhere: 1 wait for the work before them");
    // the experts may live on another device: only the normalised rows, the ids and weights go there,
    // and only their weighted sum comes back
    const auto [xe, re] = transfers.move(ffn, m.xn, m.r, experts, Buf::XN);
    lap("experts elsewhere: 2 rows, ids and weights there");
    const Tensor oe = Transfers::output(experts, ffn, Buf::Proj, n);
    experts.experts(L, xe, re, oe);
    t = timed ? cpu::profile_clock() : 0;
    ffn.add(x, transfers.move(experts, oe, ffn, Buf::Proj));
    lap("experts elsewhere: 3 the sum back (queued)");
    if (L.up_shexp.present()) ffn.add(x, m.shared);
}

}  // namespace runtime
