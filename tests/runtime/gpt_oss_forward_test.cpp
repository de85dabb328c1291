// gpt-oss end to end without an oracle program: a random checkpoint in the released layout (MXFP4
// expert blocks, interleaved gate/up, sinks, biases everywhere, YaRN, a 4-position window) is converted
// by gguf-convert and run by the runtime, and its logits are compared with a forward pass written here
// in double precision straight from the checkpoint's arrays, following transformers' GptOss
// definitions (the MXFP4 nibble order, gate = even rows, clamped SwiGLU, softmax over the top-k logits,
// sinks in the softmax, sliding window on even layers, unrounded YaRN). tests/models/gptoss holds the
// comparison with transformers itself.
//
// MXFP4 experts are multiplied as ggml does, with the activations rounded to q8_0 first; the reference
// pass applies the same rounding where it meets them, and a copy of the file with the experts stored
// as F32 (their exact values) is checked against the unrounded pass.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "convert/converter.h"
#include "dequantized_copy.h"
#include "hf_checkpoint.h"
#include "quant/float16.h"
#include "runtime/context.h"
#include "runtime/model.h"

namespace {

using hf_test::TensorSpec;
using Vec = std::vector<double>;

constexpr int H = 64, F = 32, L = 2, NH = 4, NKV = 2, HD = 16, E = 4, K = 2, V = 16, W = 4, T = 12;
// rope_theta and rms_norm_eps as hf_test::config_json writes them
constexpr double kTheta = 10000.0, kFactor = 32.0, kOrigCtx = 4096.0, kEps = 1e-6;

struct Checkpoint {
    std::vector<TensorSpec> tensors;
    std::map<std::string, std::vector<float>> values;  // as stored (bf16-rounded), by HF name
};

Checkpoint make_checkpoint() {
    Checkpoint c;
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const auto add = [&](const std::string& name, std::vector<int64_t> shape, float std, float mean = 0.0f) {
        std::vector<float> v(hf_test::n_elements(shape));
        for (float& x : v) x = quant::bf16_to_f32(quant::f32_to_bf16(mean + std * normal(rng)));
        c.values[name] = v;
        c.tensors.push_back({name, "BF16", shape, v});
    };
    const auto add_u8 = [&](const std::string& name, std::vector<int64_t> shape, int lo, int hi) {
        std::uniform_int_distribution<int> d(lo, hi);
        std::vector<float> v(hf_test::n_elements(shape));
        for (float& x : v) x = static_cast<float>(d(rng));
        c.values[name] = v;
        c.tensors.push_back({name, "U8", shape, v});
    };
    add("model.embed_tokens.weight", {V, H}, 1.0f);
    add("lm_head.weight", {V, H}, 0.25f);
    add("model.norm.weight", {H}, 0.1f, 1.0f);
    for (int l = 0; l < L; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {H}, 0.1f, 1.0f);
        add(p + "post_attention_layernorm.weight", {H}, 0.1f, 1.0f);
        add(p + "self_attn.q_proj.weight", {NH * HD, H}, 0.2f);
        add(p + "self_attn.q_proj.bias", {NH * HD}, 0.1f);
        add(p + "self_attn.k_proj.weight", {NKV * HD, H}, 0.2f);
        add(p + "self_attn.k_proj.bias", {NKV * HD}, 0.1f);
        add(p + "self_attn.v_proj.weight", {NKV * HD, H}, 0.2f);
        add(p + "self_attn.v_proj.bias", {NKV * HD}, 0.1f);
        add(p + "self_attn.o_proj.weight", {H, NH * HD}, 0.2f);
        add(p + "self_attn.o_proj.bias", {H}, 0.1f);
        add(p + "self_attn.sinks", {NH}, 1.0f);
        add(p + "mlp.router.weight", {E, H}, 0.3f);
        add(p + "mlp.router.bias", {E}, 0.2f);
        // scales 2^-4..2^-2 make gate/up values of a few units: the clamp at 7 is reached
        add_u8(p + "mlp.experts.gate_up_proj_blocks", {E, 2 * F, H / 32, 16}, 0, 255);
        add_u8(p + "mlp.experts.gate_up_proj_scales", {E, 2 * F, H / 32}, 123, 125);
        add(p + "mlp.experts.gate_up_proj_bias", {E, 2 * F}, 0.5f);
        add_u8(p + "mlp.experts.down_proj_blocks", {E, H, F / 32, 16}, 0, 255);
        add_u8(p + "mlp.experts.down_proj_scales", {E, H, F / 32}, 119, 121);
        add(p + "mlp.experts.down_proj_bias", {E, H}, 0.1f);
    }
    return c;
}

std::string config() {
    hf_test::ModelShape s;
    s.layers = L;
    s.hidden = H;
    s.heads = NH;
    s.kv_heads = NKV;
    s.ff = F;
    s.vocab = V;
    return hf_test::config_json(
        "GptOssForCausalLM", s,
        ",\"head_dim\":16,\"num_local_experts\":4,\"num_experts_per_tok\":2,\"sliding_window\":4,"
        "\"layer_types\":[\"sliding_attention\",\"full_attention\"],\"attention_bias\":true,"
        "\"rope_scaling\":{\"beta_fast\":32.0,\"beta_slow\":1.0,\"factor\":32.0,"
        "\"original_max_position_embeddings\":4096,\"rope_type\":\"yarn\",\"truncate\":false},"
        "\"quantization_config\":{\"quant_method\":\"mxfp4\"}");
}

// ---- the reference, from the checkpoint's arrays ----

const double kFp4[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};

// Expert e's matrix [rows, cols] from blocks [E, rows, cols/32, 16] and scales [E, rows, cols/32]: value
// c of a row is in byte c/2 of its group, the low nibble for even c (transformers' reading).
std::vector<Vec> mxfp4_matrix(const std::vector<float>& blocks, const std::vector<float>& scales, int e, int rows, int cols) {
    std::vector<Vec> m(static_cast<size_t>(rows), Vec(static_cast<size_t>(cols)));
    const int groups = cols / 32;
    for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) {
            const size_t g = (static_cast<size_t>(e) * rows + r) * groups + c / 32;
            const auto byte = static_cast<uint8_t>(blocks[g * 16 + (c % 32) / 2]);
            const int code = c % 2 == 0 ? byte & 0x0F : byte >> 4;
            m[r][c] = kFp4[code] * std::ldexp(1.0, static_cast<int>(scales[g]) - 127);
        }
    }
    return m;
}

Vec linear(const std::vector<float>& w, const std::vector<float>* b, const Vec& x, int rows) {
    const size_t cols = x.size();
    Vec y(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
        double s = b ? (*b)[static_cast<size_t>(r)] : 0.0;
        for (size_t c = 0; c < cols; ++c) s += double(w[r * cols + c]) * x[c];
        y[static_cast<size_t>(r)] = s;
    }
    return y;
}

// ggml's q8_0 rounding of an activation row (blocks of 32 sharing amax/127, kept as f16), which the
// runtime applies before its MXFP4 dot products.
Vec q8_0_rounded(const Vec& x) {
    Vec y(x.size());
    for (size_t b = 0; b < x.size(); b += 32) {
        double amax = 0;
        for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::abs(x[i]));
        const float d = static_cast<float>(amax / 127.0);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const double stored = quant::f16_to_f32(quant::f32_to_f16(d));
        for (size_t i = b; i < b + 32; ++i) y[i] = std::nearbyint(static_cast<float>(x[i]) * id) * stored;
    }
    return y;
}

Vec rms_norm(const Vec& x, const std::vector<float>& w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + kEps);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
    return y;
}

// transformers' YaRN with truncate false, and its attention factor
Vec yarn_inv_freq() {
    const auto corr = [](double rot) {
        return HD * std::log(kOrigCtx / (rot * 2 * std::numbers::pi)) / (2 * std::log(kTheta));
    };
    const double low = std::max(corr(32.0), 0.0), high = std::min(corr(1.0), HD - 1.0);
    Vec f;
    for (int i = 0; i < HD / 2; ++i) {
        const double ex = 1.0 / std::pow(kTheta, 2.0 * i / HD), in = ex / kFactor;
        const double extrapolation = 1.0 - std::clamp((i - low) / (high - low), 0.0, 1.0);
        f.push_back(in * (1 - extrapolation) + ex * extrapolation);
    }
    return f;
}

void rope(double* head, int pos, const Vec& inv_freq) {
    const double mscale = 0.1 * std::log(kFactor) + 1.0;
    for (int i = 0; i < HD / 2; ++i) {
        const double c = std::cos(pos * inv_freq[i]) * mscale, s = std::sin(pos * inv_freq[i]) * mscale;
        const double a = head[i], b = head[i + HD / 2];
        head[i] = a * c - b * s;
        head[i + HD / 2] = b * c + a * s;
    }
}

std::vector<Vec> reference_logits(const Checkpoint& c, const std::vector<int32_t>& tokens, bool q8_0_experts) {
    const auto expert_input = [&](const Vec& x) { return q8_0_experts ? q8_0_rounded(x) : x; };
    const auto& val = c.values;
    const Vec inv_freq = yarn_inv_freq();
    std::vector<Vec> x;
    for (int32_t t : tokens) {
        const auto& emb = val.at("model.embed_tokens.weight");
        x.emplace_back(emb.begin() + t * H, emb.begin() + (t + 1) * H);
    }
    const int n = static_cast<int>(tokens.size());
    for (int l = 0; l < L; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const auto& at = [&](const std::string& s) -> const std::vector<float>& { return val.at(p + s); };
        std::vector<Vec> q(n), k(n), v(n);
        for (int t = 0; t < n; ++t) {
            const Vec h = rms_norm(x[t], at("input_layernorm.weight"));
            q[t] = linear(at("self_attn.q_proj.weight"), &at("self_attn.q_proj.bias"), h, NH * HD);
            k[t] = linear(at("self_attn.k_proj.weight"), &at("self_attn.k_proj.bias"), h, NKV * HD);
            v[t] = linear(at("self_attn.v_proj.weight"), &at("self_attn.v_proj.bias"), h, NKV * HD);
            for (int hh = 0; hh < NH; ++hh) rope(q[t].data() + hh * HD, t, inv_freq);
            for (int hh = 0; hh < NKV; ++hh) rope(k[t].data() + hh * HD, t, inv_freq);
        }
        for (int t = 0; t < n; ++t) {
            Vec attn(NH * HD, 0.0);
            const int first = l % 2 == 0 ? std::max(0, t - W + 1) : 0;  // layer_types: sliding first
            for (int hh = 0; hh < NH; ++hh) {
                const int g = hh / (NH / NKV);
                const double sink = at("self_attn.sinks")[hh];
                Vec s;
                double mx = sink;
                for (int j = first; j <= t; ++j) {
                    double d = 0;
                    for (int i = 0; i < HD; ++i) d += q[t][hh * HD + i] * k[j][g * HD + i];
                    s.push_back(d / std::sqrt(double(HD)));
                    mx = std::max(mx, s.back());
                }
                double z = std::exp(sink - mx);
                for (double& e : s) z += (e = std::exp(e - mx));
                for (int j = first; j <= t; ++j) {
                    for (int i = 0; i < HD; ++i) attn[hh * HD + i] += s[j - first] / z * v[j][g * HD + i];
                }
            }
            const Vec o = linear(at("self_attn.o_proj.weight"), &at("self_attn.o_proj.bias"), attn, H);
            for (int i = 0; i < H; ++i) x[t][i] += o[i];
        }
        for (int t = 0; t < n; ++t) {
            const Vec h0 = rms_norm(x[t], at("post_attention_layernorm.weight"));
            const Vec logits = linear(at("mlp.router.weight"), &at("mlp.router.bias"), h0, E);
            const Vec h = expert_input(h0);
            std::vector<int> order(E);
            for (int e = 0; e < E; ++e) order[e] = e;
            std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
            double mx = logits[order[0]], z = 0;
            for (int j = 0; j < K; ++j) z += std::exp(logits[order[j]] - mx);
            for (int j = 0; j < K; ++j) {
                const int e = order[j];
                const double weight = std::exp(logits[e] - mx) / z;
                const auto gu = mxfp4_matrix(at("mlp.experts.gate_up_proj_blocks"), at("mlp.experts.gate_up_proj_scales"), e,
                                             2 * F, H);
                const auto dn = mxfp4_matrix(at("mlp.experts.down_proj_blocks"), at("mlp.experts.down_proj_scales"), e, H, F);
                Vec act(F);
                for (int i = 0; i < F; ++i) {
                    double gate = at("mlp.experts.gate_up_proj_bias")[e * 2 * F + 2 * i];
                    double up = at("mlp.experts.gate_up_proj_bias")[e * 2 * F + 2 * i + 1];
                    for (int c = 0; c < H; ++c) gate += gu[2 * i][c] * h[c], up += gu[2 * i + 1][c] * h[c];
                    gate = std::min(gate, 7.0);
                    up = std::clamp(up, -7.0, 7.0);
                    act[i] = gate / (1.0 + std::exp(-1.702 * gate)) * (up + 1.0);
                }
                act = expert_input(act);
                for (int r = 0; r < H; ++r) {
                    double d = at("mlp.experts.down_proj_bias")[e * H + r];
                    for (int i = 0; i < F; ++i) d += dn[r][i] * act[i];
                    x[t][r] += weight * d;
                }
            }
        }
    }
    std::vector<Vec> out;
    for (int t = 0; t < n; ++t) {
        out.push_back(linear(val.at("lm_head.weight"), nullptr, rms_norm(x[t], val.at("model.norm.weight")), V));
    }
    return out;
}

// Logits of `path` over `tokens`, decoded in batches of `step`, against `want`: the largest difference
// relative to the largest logit.
double relative_diff(const std::string& path, const std::vector<int32_t>& tokens, int step, const std::vector<Vec>& want) {
    const auto model = runtime::Model::load(path);
    runtime::ContextParams params;
    params.n_ctx = T;
    params.n_batch = step;
    params.n_threads = 2;
    params.type_k = params.type_v = gguf::GgmlType::F32;
    runtime::Context ctx(*model, params);
    double max_diff = 0, max_logit = 0;
    for (int t0 = 0; t0 < T; t0 += step) {
        const int n = std::min(step, T - t0);
        const auto got = ctx.decode({tokens.data() + t0, static_cast<size_t>(n)}, true);
        for (int i = 0; i < n; ++i) {
            for (int j = 0; j < V; ++j) {
                max_diff = std::max(max_diff, std::abs(got[static_cast<size_t>(i * V + j)] - want[t0 + i][j]));
                max_logit = std::max(max_logit, std::abs(want[t0 + i][j]));
            }
        }
    }
    EXPECT_GT(max_logit, 0.5);  // logits that say something
    return max_diff / std::max(1.0, max_logit);
}

TEST(GptOssForward, ConvertedCheckpointMatchesTheReferencePass) {
    hf_test::TempDir dir("gptoss-forward");
    const Checkpoint c = make_checkpoint();
    hf_test::write_file(dir / "config.json", config());
    hf_test::write_safetensors(dir / "model.safetensors", c.tensors);
    hf_test::write_file(dir / "tokenizer.json", hf_test::tokenizer_json());
    convert::ConvertOptions opt;
    opt.input_dir = dir.path.string();
    opt.output_path = (dir / "model.gguf").string();
    opt.outtype = convert::OutType::F32;
    convert::convert_checkpoint(opt);
    const std::string f32_experts = (dir / "f32-experts.gguf").string();
    testing_support::write_dequantized_copy(opt.output_path, f32_experts, gguf::GgmlType::MXFP4);

    std::vector<int32_t> tokens;
    for (int t = 0; t < T; ++t) tokens.push_back((t * 7 + 3) % V);
    const auto as_ggml = reference_logits(c, tokens, true);
    const auto exact = reference_logits(c, tokens, false);
    // one prompt; one token at a time; batches of 5 that straddle the window
    for (const int step : {T, 1, 5}) {
        EXPECT_LT(relative_diff(opt.output_path, tokens, step, as_ggml), 1e-5) << "MXFP4, batches of " << step;
        EXPECT_LT(relative_diff(f32_experts, tokens, step, exact), 1e-5) << "F32 experts, batches of " << step;
    }
    // the q8_0 rounding is what separates the MXFP4 run from the exact pass (gguf-run as llama.cpp)
    EXPECT_GT(relative_diff(opt.output_path, tokens, T, exact), 1e-4);
}

}  // namespace
