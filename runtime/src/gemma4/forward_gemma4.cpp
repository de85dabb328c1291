// Gemma 4's forward pass on the CPU, after transformers' Gemma4TextModel (and llama.cpp's gemma4 graph):
//
//   x = embedding * sqrt(n_embd)
//   per layer: h = x + post_attention_norm(attention(attn_norm(x)))
//              m = post_ffw_norm_1(mlp(ffn_norm(h)))                       (dense MLP, GELU-tanh gated)
//              e = post_ffw_norm_2(experts(pre_ffw_norm_2(h), router(h)))  (MoE layers only)
//              x = (h + post_ffw_norm(m + e)) * layer_output_scale          (m alone on dense layers)
//   logits = softcap * tanh(output(output_norm(x)) / softcap)
//
// Attention: Q and K RMS-normed per head with weights, V RMS-normed without one (V is K's raw
// projection where the layer has no attn_v), RoPE with NeoX pairing (sliding layers: whole head, base
// freq_base_swa; full layers: rope_freqs' factors leave all but the proportional part unrotated),
// scale 1 (no 1/sqrt(d): the norms set the scores' size), sliding layers seeing the last n_swa
// positions. Router: softmax over all experts of proj(rmsnorm(h) * scale / sqrt(n_embd)), top-k
// renormalised to 1, each weight times the expert's ffn_down_exps.scale.
// Norm weights multiply as stored (Gemma 4's RMSNorm has no 1 + w, and llama.cpp's converter adds
// nothing).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>

#include "cpu/matmul.h"
#include "cpu/ops.h"
#include "gemma4/gemma4.h"
#include "quant/float16.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace runtime {

namespace {

float gelu_tanh(float x) {
    // transformers' gelu_pytorch_tanh (llama.cpp's ggml_gelu computes the same formula)
    const float c = 0.7978845608028654f;  // sqrt(2 / pi)
    return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}

// x / rms(x) (times w where given); sums in double as cpu::rms_norm.
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float s = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) out[i] = w ? x[i] * s * w[i] : x[i] * s;
}

void store_row(gguf::GgmlType type, const float* src, uint8_t* dst, int64_t n) {
    if (type == gguf::GgmlType::F32) {
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else if (type == gguf::GgmlType::F16) {
        auto* h = reinterpret_cast<uint16_t*>(dst);
        for (int64_t i = 0; i < n; ++i) h[i] = quant::f32_to_f16(src[i]);
    } else {
        quant::quantize_rows(type, src, dst, 1, n);
    }
}

void matmul(const Weight& w, const float* x, int rows, int64_t ld, float* y, int64_t ldy, int n_threads,
            cpu::Activations& act) {
    act.set(x, rows, w.n_in, ld);
    cpu::matmul(w, 0, act, y, ldy, n_threads);
}

}  // namespace

std::vector<double> gemma4_inv_freq(uint32_t n_rot, float base, const std::vector<float>& factors) {
    std::vector<double> out(n_rot / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        out[i] = std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / n_rot);
        if (i < factors.size()) out[i] /= factors[i];
    }
    return out;
}

Gemma4Forward::Gemma4Forward(const HParams& hp, const ModelWeights& w, const KvCache& kv, int n_batch, int n_threads)
    : hp_(hp), w_(w), n_batch_(n_batch), n_threads_(n_threads) {
    const Gemma4HParams& g = hp.gemma4;
    inv_freq_swa_ = gemma4_inv_freq(g.n_rot_swa, g.rope_freq_base_swa, {});
    inv_freq_full_ = gemma4_inv_freq(hp.n_rot, hp.rope_freq_base, w.rope_freqs);
    // each kind's K/V row goes into the front of the cache's (widest) row: block types need whole blocks
    for (const auto type : {kv.type_k(), kv.type_v()}) {
        const uint32_t block = gguf::type_traits(type).block_size;
        for (const uint32_t width : {g.n_head_kv_swa * g.head_dim_swa, g.n_head_kv_full * g.head_dim_full}) {
            if (width % block != 0) {
                throw Error("gemma4: a KV row of " + std::to_string(width) + " values does not fill whole " +
                            std::string(gguf::type_name(type)) + " blocks; use -ctk/-ctv f16");
            }
        }
    }
    const size_t B = static_cast<size_t>(n_batch);
    const size_t E = hp.n_embd;
    const size_t hd_max = std::max(g.head_dim_swa, g.head_dim_full);
    const size_t qw = hp.n_head * hd_max;
    const size_t kvw = hp.n_embd_k();
    x_.resize(B * E);
    xn_.resize(B * E);
    h_.resize(B * E);
    proj_.resize(B * E);
    mlp_.resize(B * E);
    moe_.resize(B * E);
    q_.resize(B * qw);
    attn_.resize(B * qw);
    k_.resize(B * kvw);
    v_.resize(B * kvw);
    gate_.resize(B * std::max<size_t>(hp.n_ff, 2 * static_cast<size_t>(hp.n_ff_exp) * std::max(1u, hp.n_expert_used)));
    up_.resize(B * std::max<size_t>(hp.n_ff, static_cast<size_t>(hp.n_ff_exp) * std::max(1u, hp.n_expert_used)));
    logits_.resize(B * std::max<size_t>(hp.n_expert, 1) + B * E * std::max(1u, hp.n_expert_used));
    ids_.resize(B * std::max(1u, hp.n_expert_used));
    weights_.resize(ids_.size());
}

void Gemma4Forward::attention(int il, int n, int pos0, KvCache& kv) {
    const HParams& hp = hp_;
    const Gemma4HParams& g = hp.gemma4;
    const LayerWeights& L = w_.layers[il];
    const bool swa = hp.is_swa(static_cast<uint32_t>(il));
    const int hd = static_cast<int>(swa ? g.head_dim_swa : g.head_dim_full);
    const int n_kv_head = static_cast<int>(swa ? g.n_head_kv_swa : g.n_head_kv_full);
    const int n_head = static_cast<int>(hp.n_head);
    const int64_t E = hp.n_embd, qw = static_cast<int64_t>(n_head) * hd, kvw = static_cast<int64_t>(n_kv_head) * hd;
    const std::vector<double>& freq = swa ? inv_freq_swa_ : inv_freq_full_;

    cpu::Activations act;
    act.reserve(n, E);
    for (int t = 0; t < n; ++t) rms_norm(x_.data() + t * E, L.attn_norm.data(), xn_.data() + t * E, E, hp.rms_eps);
    matmul(L.wq, xn_.data(), n, E, q_.data(), qw, n_threads_, act);
    matmul(L.wk, xn_.data(), n, E, k_.data(), kvw, n_threads_, act);
    if (L.wv.present()) {
        matmul(L.wv, xn_.data(), n, E, v_.data(), kvw, n_threads_, act);
    } else {
        std::copy_n(k_.data(), static_cast<size_t>(n) * kvw, v_.data());  // V is K's projection, before k_norm
    }
    std::vector<float> cs(freq.size()), sn(freq.size());
    for (int t = 0; t < n; ++t) {
        for (size_t i = 0; i < freq.size(); ++i) {
            const double a = static_cast<double>(pos0 + t) * freq[i];
            cs[i] = static_cast<float>(std::cos(a));
            sn[i] = static_cast<float>(std::sin(a));
        }
        for (int h = 0; h < n_head; ++h) {
            float* qh = q_.data() + t * qw + h * hd;
            rms_norm(qh, L.q_norm.data(), qh, hd, hp.rms_eps);
            cpu::rope(qh, cs.data(), sn.data(), hd, RopeMode::Neox);
        }
        for (int h = 0; h < n_kv_head; ++h) {
            float* kh = k_.data() + t * kvw + h * hd;
            rms_norm(kh, L.k_norm.data(), kh, hd, hp.rms_eps);
            cpu::rope(kh, cs.data(), sn.data(), hd, RopeMode::Neox);
            float* vh = v_.data() + t * kvw + h * hd;
            rms_norm(vh, nullptr, vh, hd, hp.rms_eps);
        }
        store_row(kv.type_k(), k_.data() + t * kvw, kv.k_row(il, pos0 + t), kvw);
        store_row(kv.type_v(), v_.data() + t * kvw, kv.v_row(il, pos0 + t), kvw);
    }

    // the cached rows this batch reads, in f32 (the batch's own rows as the cache holds them)
    const int window = swa ? static_cast<int>(hp.n_swa) : 0;
    const auto first = [&](int t) { return window > 0 ? std::max(0, pos0 + t - window + 1) : 0; };
    const int lo = first(0), hi = pos0 + n;
    keys_.resize(static_cast<size_t>(hi - lo) * kvw);
    values_.resize(keys_.size());
#pragma omp parallel for num_threads(n_threads_) schedule(static)
    for (int p = lo; p < hi; ++p) {
        quant::dequantize_row(kv.type_k(), kv.k_row(il, p), keys_.data() + (p - lo) * kvw, kvw);
        quant::dequantize_row(kv.type_v(), kv.v_row(il, p), values_.data() + (p - lo) * kvw, kvw);
    }
    const int group = n_head / n_kv_head;
#pragma omp parallel num_threads(n_threads_)
    {
        std::vector<float> scores(static_cast<size_t>(hi - lo));
#pragma omp for schedule(static)
        for (int item = 0; item < n * n_head; ++item) {
            const int t = item / n_head, h = item % n_head;
            const float* qh = q_.data() + t * qw + h * hd;
            const int kvh = h / group;
            const int p0 = first(t), p1 = pos0 + t + 1;
            float mx = -INFINITY;
            for (int p = p0; p < p1; ++p) {
                const float* kr = keys_.data() + (p - lo) * kvw + kvh * hd;
                float s = 0.0f;
                for (int d = 0; d < hd; ++d) s += qh[d] * kr[d];
                scores[p - p0] = s;  // scaling 1.0
                mx = std::max(mx, s);
            }
            double sum = 0.0;
            for (int p = p0; p < p1; ++p) sum += (scores[p - p0] = std::exp(scores[p - p0] - mx));
            float* out = attn_.data() + t * qw + h * hd;
            std::fill_n(out, hd, 0.0f);
            for (int p = p0; p < p1; ++p) {
                const float a = static_cast<float>(scores[p - p0] / sum);
                const float* vr = values_.data() + (p - lo) * kvw + kvh * hd;
                for (int d = 0; d < hd; ++d) out[d] += a * vr[d];
            }
        }
    }
    act.reserve(n, qw);
    matmul(L.wo, attn_.data(), n, qw, proj_.data(), E, n_threads_, act);
    for (int t = 0; t < n; ++t) {
        float* pr = proj_.data() + t * E;
        rms_norm(pr, L.attn_post_norm.data(), pr, E, hp.rms_eps);
        float* hr = h_.data() + t * E;
        const float* xr = x_.data() + t * E;
        for (int64_t i = 0; i < E; ++i) hr[i] = xr[i] + pr[i];
    }
}

void Gemma4Forward::experts(int il, int n) {
    const HParams& hp = hp_;
    const LayerWeights& L = w_.layers[il];
    const int64_t E = hp.n_embd, F = hp.n_ff_exp, NE = hp.n_expert;
    const int K = static_cast<int>(hp.n_expert_used);
    float* logits = logits_.data();
    float* xe = xn_.data();
    // router input: rmsnorm(h) * scale / sqrt(n_embd)
    const float root = 1.0f / std::sqrt(static_cast<float>(E));
    for (int t = 0; t < n; ++t) {
        float* r = xe + t * E;
        rms_norm(h_.data() + t * E, nullptr, r, E, hp.rms_eps);
        for (int64_t i = 0; i < E; ++i) r[i] = r[i] * L.gate_inp_s.data()[i] * root;
    }
    cpu::Activations act;
    act.reserve(static_cast<int64_t>(n) * K, std::max(E, F));
    matmul(L.gate_inp, xe, n, E, logits, NE, n_threads_, act);
    std::vector<int> order(static_cast<size_t>(NE));
    for (int t = 0; t < n; ++t) {
        float* lg = logits + t * NE;
        cpu::softmax(lg, NE);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + K, order.end(),
                          [&](int a, int b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
        double sum = 0.0;
        for (int j = 0; j < K; ++j) sum += lg[order[j]];
        for (int j = 0; j < K; ++j) {
            const int e = order[j];
            ids_[t * K + j] = e;
            float wgt = static_cast<float>(lg[e] / sum);
            if (!L.down_exps_s.empty()) wgt *= L.down_exps_s.data()[e];
            weights_[t * K + j] = wgt;
        }
    }
    // the experts' input: pre_ffw_norm_2(h)
    for (int t = 0; t < n; ++t) rms_norm(h_.data() + t * E, L.ffn_pre_norm_2.data(), xe + t * E, E, hp.rms_eps);
    // the (token, slot) pairs of each expert
    std::vector<std::vector<int32_t>> tok(static_cast<size_t>(NE)), pair(static_cast<size_t>(NE));
    for (int t = 0; t < n; ++t) {
        for (int j = 0; j < K; ++j) {
            tok[ids_[t * K + j]].push_back(t);
            pair[ids_[t * K + j]].push_back(t * K + j);
        }
    }
    const bool fused = L.gate_up_exps.present();
    const Weight& wg = fused ? L.gate_up_exps : L.gate_exps;
    float* gu = gate_.data();  // per pair: 2F (gate then up), then the activation in the first F
    act.set(xe, n, E, E);
    act.prepare(wg.type, n_threads_);
#pragma omp parallel for num_threads(n_threads_) schedule(dynamic, 1)
    for (int64_t e = 0; e < NE; ++e) {
        const int m = static_cast<int>(tok[e].size());
        if (m == 0) continue;
        if (fused) {
            cpu::matmul_rows(wg, e, act, tok[e].data(), pair[e].data(), m, 0, 2 * F, gu, 2 * F);
        } else {
            cpu::matmul_rows(wg, e, act, tok[e].data(), pair[e].data(), m, 0, F, gu, 2 * F);
        }
    }
    if (!fused) {
        act.prepare(L.up_exps.type, n_threads_);
#pragma omp parallel for num_threads(n_threads_) schedule(dynamic, 1)
        for (int64_t e = 0; e < NE; ++e) {
            const int m = static_cast<int>(tok[e].size());
            if (m == 0) continue;
            cpu::matmul_rows(L.up_exps, e, act, tok[e].data(), pair[e].data(), m, 0, F, gu + F, 2 * F);
        }
    }
    const int n_pairs = n * K;
    for (int pr = 0; pr < n_pairs; ++pr) {
        float* row = gu + static_cast<int64_t>(pr) * 2 * F;
        for (int64_t i = 0; i < F; ++i) row[i] = gelu_tanh(row[i]) * row[F + i];
    }
    float* down = logits_.data() + static_cast<size_t>(n_batch_) * std::max<uint32_t>(hp.n_expert, 1);
    cpu::Activations act2;
    act2.reserve(n_pairs, F);
    act2.set(gu, n_pairs, F, 2 * F);
    act2.prepare(L.down_exps.type, n_threads_);
#pragma omp parallel for num_threads(n_threads_) schedule(dynamic, 1)
    for (int64_t e = 0; e < NE; ++e) {
        const int m = static_cast<int>(pair[e].size());
        if (m == 0) continue;
        cpu::matmul_rows(L.down_exps, e, act2, pair[e].data(), pair[e].data(), m, 0, E, down, E);
    }
    for (int t = 0; t < n; ++t) {
        float* o = moe_.data() + t * E;
        std::fill_n(o, E, 0.0f);
        for (int j = 0; j < K; ++j) {
            const float wgt = weights_[t * K + j];
            const float* d = down + static_cast<int64_t>(t * K + j) * E;
            for (int64_t i = 0; i < E; ++i) o[i] += wgt * d[i];
        }
        rms_norm(o, L.ffn_post_norm_2.data(), o, E, hp.rms_eps);
    }
}

void Gemma4Forward::feed_forward(int il, int n) {
    const HParams& hp = hp_;
    const LayerWeights& L = w_.layers[il];
    const int64_t E = hp.n_embd, F = hp.n_ff;
    cpu::Activations act;
    act.reserve(n, std::max(E, F));
    for (int t = 0; t < n; ++t) rms_norm(h_.data() + t * E, L.ffn_norm.data(), xn_.data() + t * E, E, hp.rms_eps);
    matmul(L.ffn_gate, xn_.data(), n, E, gate_.data(), F, n_threads_, act);
    matmul(L.ffn_up, xn_.data(), n, E, up_.data(), F, n_threads_, act);
    for (int64_t i = 0; i < static_cast<int64_t>(n) * F; ++i) gate_[i] = gelu_tanh(gate_[i]) * up_[i];
    matmul(L.ffn_down, gate_.data(), n, F, mlp_.data(), E, n_threads_, act);
    const bool moe = L.is_moe();
    if (moe) {
        for (int t = 0; t < n; ++t) rms_norm(mlp_.data() + t * E, L.ffn_post_norm_1.data(), mlp_.data() + t * E, E, hp.rms_eps);
        experts(il, n);
    }
    const float scale = L.out_scale.empty() ? 1.0f : L.out_scale.data()[0];
    for (int t = 0; t < n; ++t) {
        float* m = mlp_.data() + t * E;
        if (moe) {
            const float* e = moe_.data() + t * E;
            for (int64_t i = 0; i < E; ++i) m[i] += e[i];
        }
        rms_norm(m, L.ffn_post_norm.data(), m, E, hp.rms_eps);
        float* xr = x_.data() + t * E;
        const float* hr = h_.data() + t * E;
        for (int64_t i = 0; i < E; ++i) xr[i] = (hr[i] + m[i]) * scale;
    }
}

void Gemma4Forward::forward(const int32_t* tokens, int n, int pos0, KvCache& kv, int first, float* logits,
                            float* hidden) {
    const HParams& hp = hp_;
    const int64_t E = hp.n_embd;
    const float embed_scale = std::sqrt(static_cast<float>(E));
    for (int t = 0; t < n; ++t) {
        float* xr = x_.data() + t * E;
        quant::dequantize_row(w_.token_embd.type, w_.token_embd.row(0, tokens[t]), xr, E);
        for (int64_t i = 0; i < E; ++i) xr[i] *= embed_scale;
    }
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        attention(static_cast<int>(il), n, pos0, kv);
        feed_forward(static_cast<int>(il), n);
    }
    if (!logits && !hidden) return;
    const int rows = n - first;
    for (int t = first; t < n; ++t) rms_norm(x_.data() + t * E, w_.output_norm.data(), xn_.data() + (t - first) * E, E, hp.rms_eps);
    if (hidden) std::copy_n(xn_.data(), static_cast<size_t>(rows) * E, hidden);
    if (!logits) return;
    const int64_t V = w_.output.n_out;
    cpu::Activations act;
    act.reserve(rows, E);
    matmul(w_.output, xn_.data(), rows, E, logits, V, n_threads_, act);
    const float cap = hp.gemma4.final_logit_softcap;
    if (cap > 0.0f) {
        for (int64_t i = 0; i < static_cast<int64_t>(rows) * V; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
    }
}

}  // namespace runtime
