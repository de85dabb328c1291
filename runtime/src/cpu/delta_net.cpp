// qwen35moe on the CPU: the Gated DeltaNet layer (causal depthwise convolution, gated delta rule,
// gated RMSNorm), the gated attention's q/gate split and sigmoid gating.
//
// The delta rule runs token by token for prompts as for decode (transformers and llama.cpp use a
// chunked form for prompts, which turns the recurrence into matrix products for accelerators; both
// compute the same values). On the CPU the recurrence costs d_k x d_v multiply-adds per head and
// token, little beside the layer's projections, and prompt and decode then share one code path.
#include <omp.h>

#include <cmath>
#include <cstring>

#include "cpu_backend.h"
#include "ops.h"
#include "profile.h"
#include "runtime/recurrent_state.h"

namespace runtime::cpu {

namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float silu(float x) { return x / (1.0f + std::exp(-x)); }
// torch's softplus (beta 1, threshold 20)
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// x / sqrt(sum x^2 + 1e-6), transformers' l2norm for the delta rule's q and k (eps fixed at 1e-6)
void l2_normalize(const float* x, float* out, int n, float scale) {
    double ss = 0.0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss + 1e-6)) * scale;
    for (int i = 0; i < n; ++i) out[i] = x[i] * inv;
}

}  // namespace

void delta_rule_head(int n_tokens, const float* q, const float* k, const float* v, int64_t ld, const float* g,
                     const float* beta, int64_t ld_gb, int d_k, int d_v, float* state, float* out, int64_t ld_out) {
    constexpr int kMaxDim = 512;
    float qn[kMaxDim], kn[kMaxDim], delta[kMaxDim];
    const float q_scale = 1.0f / std::sqrt(static_cast<float>(d_k));
    for (int t = 0; t < n_tokens; ++t) {
        l2_normalize(q + t * ld, qn, d_k, q_scale);
        l2_normalize(k + t * ld, kn, d_k, 1.0f);
        const float decay = std::exp(g[t * ld_gb]), b = beta[t * ld_gb];
        const float* vt = v + t * ld;
        // S <- S * exp(g); the value S predicts for k, and the correction toward v
        for (int j = 0; j < d_v; ++j) delta[j] = 0.0f;
        for (int i = 0; i < d_k; ++i) {
            float* row = state + static_cast<int64_t>(i) * d_v;
            const float ki = kn[i];
            for (int j = 0; j < d_v; ++j) {
                row[j] *= decay;
                delta[j] += row[j] * ki;
            }
        }
        for (int j = 0; j < d_v; ++j) delta[j] = (vt[j] - delta[j]) * b;
        // S += k delta^T, and the output reads the updated state with q
        float* o = out + t * ld_out;
        for (int j = 0; j < d_v; ++j) o[j] = 0.0f;
        for (int i = 0; i < d_k; ++i) {
            float* row = state + static_cast<int64_t>(i) * d_v;
            const float ki = kn[i], qi = qn[i];
            for (int j = 0; j < d_v; ++j) {
                row[j] += ki * delta[j];
                o[j] += row[j] * qi;
            }
        }
    }
}

void CpuExecutor::split_gated_q(const Tensor& qg, int head_dim, const Tensor& q, const Tensor& gate) {
    const int64_t heads = q.cols / head_dim;
    const size_t bytes = static_cast<size_t>(head_dim) * sizeof(float);
    for (int64_t t = 0; t < qg.rows; ++t) {
        for (int64_t h = 0; h < heads; ++h) {
            std::memcpy(q.row(t) + h * head_dim, qg.row(t) + 2 * h * head_dim, bytes);
            std::memcpy(gate.row(t) + h * head_dim, qg.row(t) + (2 * h + 1) * head_dim, bytes);
        }
    }
}

void CpuExecutor::sigmoid_mul(const Tensor& x, const Tensor& gate) {
    for (int64_t t = 0; t < x.rows; ++t) {
        float* r = x.row(t);
        const float* g = gate.row(t);
        if (gate.cols == 1) {
            const float s = sigmoid(g[0]);
            for (int64_t i = 0; i < x.cols; ++i) r[i] *= s;
        } else {
            for (int64_t i = 0; i < x.cols; ++i) r[i] *= sigmoid(g[i]);
        }
    }
}

void CpuExecutor::delta_net(const LayerWeights& L, RecurrentState& rs, int il, const Tensor& xn, const Tensor& out) {
    ProfileScope prof("delta_net");
    const DeltaNetWeights& w = L.delta;
    const int n = static_cast<int>(xn.rows);
    const int64_t conv_dim = hp_.ssm_conv_dim(), inner = hp_.ssm_d_inner;
    const int heads = static_cast<int>(hp_.ssm_n_v_heads), k_heads = static_cast<int>(hp_.ssm_n_k_heads);
    const int d_k = static_cast<int>(hp_.ssm_d_state), d_v = static_cast<int>(hp_.ssm_head_v_dim());
    const int taps = static_cast<int>(hp_.ssm_d_conv);
    const int64_t key_dim = static_cast<int64_t>(k_heads) * d_k;

    // the projections: q/k/v channels, z, beta and alpha logits
    const Tensor mixed{delta_.mixed.data(), n, conv_dim, conv_dim, Device::cpu()};
    const Tensor z{delta_.z.data(), n, inner, inner, Device::cpu()};
    const Tensor beta{delta_.beta.data(), n, heads, heads, Device::cpu()};
    const Tensor alpha{delta_.alpha.data(), n, heads, heads, Device::cpu()};
    const MatmulOut proj[] = {{&w.qkv, mixed}, {&w.gate, z}, {&w.beta, beta}, {&w.alpha, alpha}};
    matmul(proj, xn);

    // causal depthwise convolution over the state's last taps-1 inputs and this batch's, then SiLU;
    // the newest taps-1 inputs become the state
    float* win = delta_.window.data();
    float* conv_state = rs.conv(il);
    const int64_t hist = taps - 1;
    std::memcpy(win, conv_state, static_cast<size_t>(hist * conv_dim) * sizeof(float));
    std::memcpy(win + hist * conv_dim, mixed.data, static_cast<size_t>(n * conv_dim) * sizeof(float));
    std::memcpy(conv_state, win + n * conv_dim, static_cast<size_t>(hist * conv_dim) * sizeof(float));
    const float* kernel = w.conv.data();  // conv_dim rows of `taps`, oldest tap first
#pragma omp parallel for num_threads(n_threads_) schedule(static)
    for (int64_t c = 0; c < conv_dim; ++c) {
        const float* kc = kernel + c * taps;
        for (int t = 0; t < n; ++t) {
            float acc = 0.0f;
            for (int j = 0; j < taps; ++j) acc += kc[j] * win[(t + j) * conv_dim + c];
            mixed.row(t)[c] = silu(acc);
        }
    }
    // per token and value head: g = a * softplus(alpha + dt_bias) (a = -exp(A_log)), beta = sigmoid
    const float* a = w.a.data();
    const float* dt = w.dt_bias.data();
    for (int t = 0; t < n; ++t) {
        for (int h = 0; h < heads; ++h) {
            alpha.row(t)[h] = a[h] * softplus(alpha.row(t)[h] + dt[h]);
            beta.row(t)[h] = sigmoid(beta.row(t)[h]);
        }
    }
    // the delta rule per value head (value head h reads key head h % k_heads: llama.cpp's tiled order),
    // then the gated RMSNorm: norm(o) * w * silu(z)
    float* ssm = rs.ssm(il);
    const Tensor core{delta_.core.data(), n, inner, inner, Device::cpu()};
    const float* norm_w = w.norm.data();
    const float eps = hp_.rms_eps;
#pragma omp parallel for num_threads(n_threads_) schedule(dynamic, 1)
    for (int h = 0; h < heads; ++h) {
        const int kh = h % k_heads;
        const float* q = mixed.data + static_cast<int64_t>(kh) * d_k;
        const float* k = mixed.data + key_dim + static_cast<int64_t>(kh) * d_k;
        const float* v = mixed.data + 2 * key_dim + static_cast<int64_t>(h) * d_v;
        float* o = core.data + static_cast<int64_t>(h) * d_v;
        delta_rule_head(n, q, k, v, conv_dim, alpha.data + h, beta.data + h, heads, d_k, d_v,
                        ssm + static_cast<int64_t>(h) * d_k * d_v, o, inner);
        for (int t = 0; t < n; ++t) {
            float* ot = o + t * inner;
            cpu::rms_norm(ot, norm_w, ot, d_v, eps);
            const float* zt = z.row(t) + static_cast<int64_t>(h) * d_v;
            for (int j = 0; j < d_v; ++j) ot[j] *= silu(zt[j]);
        }
    }
    const MatmulOut o[] = {{&w.out, out}};
    matmul(o, core);
}

}  // namespace runtime::cpu
