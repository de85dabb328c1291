// The gemma4-assistant draft step, after transformers' Gemma4AssistantForCausalLM and llama.cpp's
// gemma4-assistant graph: pre_projection([target embedding(token) * sqrt(target n_embd), target hidden])
// into the draft's width, then decoder layers whose attention has queries only and reads the target's
// K/V (the target's last layer of the same kind, as transformers' shared_kv_states holds them), the
// final norm, the logits from the draft's own (tied) embedding without softcapping, and
// post_projection of the final-norm state back to the target's width for the next step.
#include <algorithm>
#include <cmath>
#include <string>

#include "cpu/matmul.h"
#include "cpu/ops.h"
#include "gemma4/gemma4.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace runtime {

namespace {

float gelu_tanh(float x) {
    const float c = 0.7978845608028654f;
    return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}

void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float s = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) out[i] = w ? x[i] * s * w[i] : x[i] * s;
}

void matvec(const Weight& w, const float* x, float* y, int n_threads) {
    cpu::Activations act;
    act.reserve(1, w.n_in);
    act.set(x, 1, w.n_in, w.n_in);
    cpu::matmul(w, 0, act, y, w.n_out, n_threads);
}

}  // namespace

Gemma4Draft::Gemma4Draft(const HParams& hp, const ModelWeights& w, const HParams& target_hp,
                         const ModelWeights& target_w, int n_threads)
    : hp_(hp), w_(w), thp_(target_hp), tw_(target_w), n_threads_(n_threads) {
    if (hp.arch != Arch::Gemma4Assistant) throw Error("the draft model is not a gemma4-assistant");
    if (target_hp.arch != Arch::Gemma4) throw Error("a gemma4-assistant drafts for a gemma4 target");
    const Gemma4HParams &g = hp.gemma4, &tg = target_hp.gemma4;
    if (g.n_embd_backbone != target_hp.n_embd) {
        throw Error("the gemma4-assistant was made for a target of hidden size " + std::to_string(g.n_embd_backbone) +
                    ", this target has " + std::to_string(target_hp.n_embd));
    }
    if (g.head_dim_swa != tg.head_dim_swa || g.head_dim_full != tg.head_dim_full ||
        g.n_head_kv_swa != tg.n_head_kv_swa || g.n_head_kv_full != tg.n_head_kv_full) {
        throw Error("the gemma4-assistant's attention shapes differ from its target's KV cache");
    }
    for (uint32_t il = 0; il < target_hp.n_layer; ++il) {
        (target_hp.is_swa(il) ? target_layer_swa_ : target_layer_full_) = static_cast<int>(il);
    }
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        if ((hp.is_swa(il) ? target_layer_swa_ : target_layer_full_) < 0) {
            throw Error("the target has no layer of the kind the draft's layer " + std::to_string(il) + " reads");
        }
    }
    inv_freq_swa_ = gemma4_inv_freq(g.n_rot_swa, g.rope_freq_base_swa, {});
    inv_freq_full_ = gemma4_inv_freq(hp.n_rot, hp.rope_freq_base, w.rope_freqs);
}

void Gemma4Draft::step(int32_t token, const float* h, int pos, const KvCache& kv, int n_kv, float* logits,
                       float* h_next) {
    const HParams& hp = hp_;
    const Gemma4HParams& g = hp.gemma4;
    const int64_t B = thp_.n_embd, E = hp.n_embd;
    if (token < 0 || token >= tw_.token_embd.n_out) throw Error("draft: token id out of range");
    if (n_kv < 1 || n_kv > kv.n_ctx()) throw Error("draft: the target cache holds no such positions");

    std::vector<float> xh(static_cast<size_t>(2 * B));
    quant::dequantize_row(tw_.token_embd.type, tw_.token_embd.row(0, token), xh.data(), B);
    const float scale = std::sqrt(static_cast<float>(B));
    for (int64_t i = 0; i < B; ++i) xh[i] *= scale;
    std::copy_n(h, B, xh.data() + B);
    std::vector<float> x(static_cast<size_t>(E)), xn(x.size()), proj(x.size());
    matvec(w_.nextn_proj_pre, xh.data(), x.data(), n_threads_);

    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const LayerWeights& L = w_.layers[il];
        const bool swa = hp.is_swa(il);
        const int hd = static_cast<int>(swa ? g.head_dim_swa : g.head_dim_full);
        const int n_kv_head = static_cast<int>(swa ? g.n_head_kv_swa : g.n_head_kv_full);
        const int n_head = static_cast<int>(hp.n_head);
        const int64_t kvw = static_cast<int64_t>(n_kv_head) * hd;
        const int tl = swa ? target_layer_swa_ : target_layer_full_;
        rms_norm(x.data(), L.attn_norm.data(), xn.data(), E, hp.rms_eps);
        std::vector<float> q(static_cast<size_t>(n_head) * hd), attn(q.size());
        matvec(L.wq, xn.data(), q.data(), n_threads_);
        const std::vector<double>& freq = swa ? inv_freq_swa_ : inv_freq_full_;
        std::vector<float> cs(freq.size()), sn(freq.size());
        for (size_t i = 0; i < freq.size(); ++i) {
            cs[i] = static_cast<float>(std::cos(pos * freq[i]));
            sn[i] = static_cast<float>(std::sin(pos * freq[i]));
        }
        for (int hh = 0; hh < n_head; ++hh) {
            float* qh = q.data() + hh * hd;
            rms_norm(qh, L.q_norm.data(), qh, hd, hp.rms_eps);
            cpu::rope(qh, cs.data(), sn.data(), hd, RopeMode::Neox);
        }
        // the target's cached K/V; a sliding layer sees its last n_swa + 1 positions: transformers'
        // assistant masks with a bidirectional sliding window, which keeps keys at distance <= n_swa
        // from the last one (inclusive, unlike the target's causal window of n_swa positions)
        const int lo = swa ? std::max(0, n_kv - static_cast<int>(hp.n_swa) - 1) : 0;
        keys_.resize(static_cast<size_t>(n_kv - lo) * kvw);
        values_.resize(keys_.size());
        for (int p = lo; p < n_kv; ++p) {
            quant::dequantize_row(kv.type_k(), kv.k_row(tl, p), keys_.data() + (p - lo) * kvw, kvw);
            quant::dequantize_row(kv.type_v(), kv.v_row(tl, p), values_.data() + (p - lo) * kvw, kvw);
        }
        const int group = n_head / n_kv_head;
        std::vector<double> s(static_cast<size_t>(n_kv - lo));
        for (int hh = 0; hh < n_head; ++hh) {
            const float* qh = q.data() + hh * hd;
            const int kvh = hh / group;
            double mx = -INFINITY;
            for (int p = lo; p < n_kv; ++p) {
                const float* kr = keys_.data() + (p - lo) * kvw + kvh * hd;
                double d = 0.0;
                for (int i = 0; i < hd; ++i) d += static_cast<double>(qh[i]) * kr[i];
                s[p - lo] = d;
                mx = std::max(mx, d);
            }
            double sum = 0.0;
            for (double& v : s) sum += (v = std::exp(v - mx));
            float* out = attn.data() + hh * hd;
            std::fill_n(out, hd, 0.0f);
            for (int p = lo; p < n_kv; ++p) {
                const float a = static_cast<float>(s[p - lo] / sum);
                const float* vr = values_.data() + (p - lo) * kvw + kvh * hd;
                for (int i = 0; i < hd; ++i) out[i] += a * vr[i];
            }
        }
        matvec(L.wo, attn.data(), proj.data(), n_threads_);
        rms_norm(proj.data(), L.attn_post_norm.data(), proj.data(), E, hp.rms_eps);
        for (int64_t i = 0; i < E; ++i) x[i] += proj[i];
        rms_norm(x.data(), L.ffn_norm.data(), xn.data(), E, hp.rms_eps);
        std::vector<float> gate(static_cast<size_t>(hp.n_ff)), up(gate.size());
        matvec(L.ffn_gate, xn.data(), gate.data(), n_threads_);
        matvec(L.ffn_up, xn.data(), up.data(), n_threads_);
        for (size_t i = 0; i < gate.size(); ++i) gate[i] = gelu_tanh(gate[i]) * up[i];
        matvec(L.ffn_down, gate.data(), proj.data(), n_threads_);
        rms_norm(proj.data(), L.ffn_post_norm.data(), proj.data(), E, hp.rms_eps);
        const float out_scale = L.out_scale.empty() ? 1.0f : L.out_scale.data()[0];
        for (int64_t i = 0; i < E; ++i) x[i] = (x[i] + proj[i]) * out_scale;
    }
    rms_norm(x.data(), w_.output_norm.data(), xn.data(), E, hp.rms_eps);
    if (logits) matvec(w_.output, xn.data(), logits, n_threads_);
    if (h_next) matvec(w_.nextn_proj_post, xn.data(), h_next, n_threads_);
}

}  // namespace runtime
