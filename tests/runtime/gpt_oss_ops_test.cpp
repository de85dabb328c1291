// The CPU operations gpt-oss adds, each against a direct computation written here: attention with
// sinks and a sliding window, the clamped SwiGLU, the top-k-then-softmax router, per-expert biases,
// YaRN's frequencies (values from transformers' formula with gpt-oss's settings), and the
// hyper-parameters read from a gpt-oss header.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "rope_yarn.h"
#include "runtime/error.h"
#include "runtime/hparams.h"

namespace {

using runtime::cpu::kAttendPad;
using runtime::cpu::kAttendRows;

// softmax(q.K * scale, sink) V in double: the sink is one more logit in the denominator.
std::vector<double> reference_attention(const float* q, float scale, const std::vector<float>& kt, int64_t ld, int hd,
                                        const std::vector<float>& v, int hdv, int p0, int p1, const float* sink) {
    std::vector<double> s;
    double mx = sink ? *sink : -1e300;
    for (int p = p0; p < p1; ++p) {
        double d = 0;
        for (int k = 0; k < hd; ++k) d += double(q[k]) * scale * kt[k * ld + p];
        s.push_back(d);
        mx = std::max(mx, d);
    }
    double sum = sink ? std::exp(*sink - mx) : 0.0;
    for (auto& x : s) sum += (x = std::exp(x - mx));
    std::vector<double> out(static_cast<size_t>(hdv));
    for (int k = 0; k < hdv; ++k) {
        for (int p = p0; p < p1; ++p) out[k] += s[p - p0] / sum * v[p * hdv + k];
    }
    return out;
}

TEST(GptOssOps, SinksJoinTheSoftmaxAndWindowsCutIt) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int hd = 32, hdv = 32, n_kv = 70, rows = 4;
    const int padded = (n_kv + kAttendPad - 1) / kAttendPad * kAttendPad;
    const int64_t ld = padded + 16;
    std::vector<float> q(rows * hd), kt(hd * ld), v(n_kv * hdv), sinks(rows);
    for (auto& x : q) x = normal(rng);
    for (auto& x : kt) x = normal(rng);
    for (auto& x : v) x = normal(rng);
    // sinks from negligible to dominant
    sinks = {-20.0f, 0.0f, 2.0f, 9.0f};
    const float scale = 1.0f / std::sqrt(float(hd));
    std::vector<float> scores(static_cast<size_t>(ld) * kAttendRows);
    for (const int window : {0, 16}) {
        // a window of 16 ending at the last position: the caller passes the first visible key
        const int p0 = window ? n_kv - window : 0;
        std::vector<float> one(rows * hdv), many(rows * hdv);
        std::vector<const float*> qs;
        std::vector<float*> outs;
        for (int r = 0; r < rows; ++r) {
            runtime::cpu::attend(q.data() + r * hd, scale, kt.data() + p0, ld, hd, v.data() + p0 * hdv, hdv, n_kv - p0,
                                 scores.data(), one.data() + r * hdv, &sinks[r]);
            qs.push_back(q.data() + r * hd);
            outs.push_back(many.data() + r * hdv);
        }
        runtime::cpu::attend_rows(rows, qs.data(), scale, kt.data() + p0, ld, hd, v.data() + p0 * hdv, hdv, n_kv - p0,
                                  scores.data(), ld, outs.data(), sinks.data());
        for (int r = 0; r < rows; ++r) {
            const auto want = reference_attention(q.data() + r * hd, scale, kt, ld, hd, v, hdv, p0, n_kv, &sinks[r]);
            for (int k = 0; k < hdv; ++k) {
                EXPECT_NEAR(one[r * hdv + k], want[k], 1e-5) << "window " << window << " row " << r << " dim " << k;
                EXPECT_EQ(one[r * hdv + k], many[r * hdv + k]) << "attend_rows differs, row " << r;
            }
        }
    }
    // a dominant sink takes almost all the weight: the output shrinks toward zero
    std::vector<float> out(hdv), plain(hdv);
    runtime::cpu::attend(q.data() + 3 * hd, scale, kt.data(), ld, hd, v.data(), hdv, n_kv, scores.data(), out.data(), &sinks[3]);
    runtime::cpu::attend(q.data() + 3 * hd, scale, kt.data(), ld, hd, v.data(), hdv, n_kv, scores.data(), plain.data());
    double n_out = 0, n_plain = 0;
    for (int k = 0; k < hdv; ++k) n_out += out[k] * out[k], n_plain += plain[k] * plain[k];
    EXPECT_LT(n_out, 0.01 * n_plain);
}

TEST(GptOssOps, ClampedSwigluAsGptOssDefinesIt) {
    const std::vector<float> gate = {-10.0f, -1.0f, 0.0f, 0.5f, 3.0f, 6.9f, 7.0f, 12.0f};
    const std::vector<float> up = {-9.0f, -7.5f, 2.0f, -0.5f, 1.0f, 8.0f, -3.0f, 0.25f};
    std::vector<float> out(gate.size());
    runtime::cpu::swiglu_oai(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()), 1.702f, 7.0f);
    for (size_t i = 0; i < gate.size(); ++i) {
        const double g = std::min(double(gate[i]), 7.0);             // gate clamped from above only
        const double u = std::clamp(double(up[i]), -7.0, 7.0);        // up clamped both ways
        const double want = g / (1.0 + std::exp(-1.702 * g)) * (u + 1.0);
        EXPECT_NEAR(out[i], want, 1e-5 * std::max(1.0, std::abs(want))) << "element " << i;
    }
}

TEST(GptOssOps, RouterTakesTopKLogitsThenTheirSoftmax) {
    // 8 experts; the top 4 logits are experts 6, 1, 3 and 5 (3 and 5 tie: the lower id first)
    std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.0f, -3.0f, 1.0f, 4.0f, 0.25f};
    const runtime::Tensor t{logits.data(), 1, 8, 8, runtime::Device::cpu()};
    std::vector<int32_t> ids(4);
    std::vector<float> w(4);
    const runtime::Routing r{ids.data(), w.data(), 1, 4, runtime::Device::cpu()};
    runtime::RouterParams p;
    p.k = 4;
    p.normalize = false;
    p.softmax_topk = true;
    runtime::cpu::route_topk(t, p, r);
    EXPECT_EQ(ids, (std::vector<int32_t>{6, 1, 3, 5}));
    const double z = std::exp(4.0) + std::exp(2.0) + std::exp(1.0) + std::exp(1.0);
    EXPECT_NEAR(w[0], std::exp(4.0) / z, 1e-6);
    EXPECT_NEAR(w[1], std::exp(2.0) / z, 1e-6);
    EXPECT_NEAR(w[2], std::exp(1.0) / z, 1e-6);
    EXPECT_NEAR(w[3], std::exp(1.0) / z, 1e-6);
}

TEST(GptOssOps, ExpertBiasFollowsEachSlotsExpert) {
    const std::vector<float> bias = {1, 2, 3, 10, 20, 30, 100, 200, 300};  // 3 experts x width 3
    std::vector<float> rows(2 * 4, 0.5f);                                 // 2 slots, ld 4
    const std::vector<int32_t> ids = {2, 0};
    runtime::cpu::add_expert_bias(rows.data(), 4, ids.data(), 2, bias.data(), 3, 3);
    EXPECT_EQ(rows, (std::vector<float>{100.5f, 200.5f, 300.5f, 0.5f, 1.5f, 2.5f, 3.5f, 0.5f}));
    // a column range: columns 1..2 of each slot's expert row
    std::vector<float> part(2 * 2, 0.0f);
    runtime::cpu::add_expert_bias(part.data(), 2, ids.data(), 2, bias.data() + 1, 3, 2);
    EXPECT_EQ(part, (std::vector<float>{200, 300, 2, 3}));
}

// gpt-oss-20b's RoPE (base 150000, YaRN factor 32 over 4096 positions, beta 32/1, unrounded ramp) at
// a head of 32: the values transformers' _compute_yarn_parameters gives.
TEST(GptOssOps, YarnFrequenciesMatchTransformers) {
    runtime::HParams hp;
    hp.n_rot = 32;
    hp.rope_freq_base = 150000.0f;
    hp.rope_freq_scale = 1.0f / 32.0f;
    hp.rope_yarn = true;
    hp.yarn.n_ctx_orig = 4096;
    hp.yarn.truncate = false;
    const std::vector<double> f = runtime::yarn_inv_freq(hp);
    ASSERT_EQ(f.size(), 16u);
    const std::pair<int, double> want[] = {{0, 1.0},
                                           {3, 0.10702442147781144},
                                           {4, 0.050813274815461475},
                                           {5, 0.019335001126540362},
                                           {6, 0.006794959489732219},
                                           {8, 0.00045648391922324086},
                                           {9, 3.8308812373753384e-05},
                                           {15, 4.387978250864396e-07}};
    for (const auto& [i, v] : want) EXPECT_NEAR(f[static_cast<size_t>(i)], v, 1e-6 * v) << "pair " << i;
    // llama.cpp's rounding of the ramp's ends (truncate) moves the middle frequencies
    hp.yarn.truncate = true;
    EXPECT_GT(std::abs(runtime::yarn_inv_freq(hp)[6] - 0.006794959489732219), 1e-4);
}

gguf::Metadata gpt_oss_header() {
    gguf::Metadata m;
    m.set("general.architecture", gguf::Value::string("gpt-oss"));
    const auto u32 = [&](const char* k, uint32_t v) { m.set(std::string("gpt-oss.") + k, gguf::Value::u32(v)); };
    u32("block_count", 4);
    u32("context_length", 131072);
    u32("embedding_length", 64);
    u32("feed_forward_length", 96);
    u32("attention.head_count", 4);
    u32("attention.head_count_kv", 2);
    u32("attention.key_length", 32);
    u32("attention.value_length", 32);
    u32("expert_count", 8);
    u32("expert_used_count", 4);
    u32("expert_feed_forward_length", 96);
    u32("attention.sliding_window", 16);
    u32("rope.scaling.original_context_length", 4096);
    m.set("gpt-oss.rope.scaling.type", gguf::Value::string("yarn"));
    m.set("gpt-oss.rope.scaling.factor", gguf::Value::f32(32.0f));
    m.set("gpt-oss.rope.freq_base", gguf::Value::f32(150000.0f));
    m.set("gpt-oss.attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
    return m;
}

TEST(GptOssOps, HyperParametersOfAGptOssHeader) {
    const runtime::HParams hp = runtime::HParams::from_metadata(gpt_oss_header());
    EXPECT_EQ(hp.arch, runtime::Arch::GptOss);
    EXPECT_EQ(hp.rope_mode, runtime::RopeMode::Neox);
    EXPECT_EQ(hp.n_ff_exp, 96u);
    EXPECT_TRUE(hp.rope_yarn);
    EXPECT_FALSE(hp.yarn.truncate);
    EXPECT_NEAR(hp.rope_attn_factor, 1.0 + 0.1 * std::log(32.0), 1e-6);
    // sliding window on even layers (llama.cpp's period 2: the first of each pair)
    EXPECT_EQ(hp.window(0), 16u);
    EXPECT_EQ(hp.window(1), 0u);
    EXPECT_EQ(hp.window(2), 16u);
    EXPECT_TRUE(hp.attn_sinks && hp.router_softmax_topk);
    EXPECT_FALSE(hp.expert_weights_norm);
    EXPECT_FLOAT_EQ(hp.swiglu_limit, 7.0f);

    gguf::Metadata m = gpt_oss_header();
    m.set("gpt-oss.attention.sliding_window_pattern", gguf::Value::u32(3));
    EXPECT_EQ(runtime::HParams::from_metadata(m).window(1), 16u);
    EXPECT_EQ(runtime::HParams::from_metadata(m).window(2), 0u);
}

TEST(GptOssOps, BadGptOssHeadersAreNamed) {
    gguf::Metadata m = gpt_oss_header();
    m.erase("gpt-oss.attention.sliding_window");
    EXPECT_THROW(
        {
            try {
                runtime::HParams::from_metadata(m);
            } catch (const runtime::Error& e) {
                EXPECT_NE(std::string(e.what()).find("gpt-oss.attention.sliding_window"), std::string::npos) << e.what();
                throw;
            }
        },
        runtime::Error);
    m = gpt_oss_header();
    m.set("gpt-oss.rope.scaling.factor", gguf::Value::f32(1.0f));
    EXPECT_THROW(runtime::HParams::from_metadata(m), runtime::Error);
    // YaRN stays refused for the architectures that have no implementation of it
    m = gpt_oss_header();
    m.set("general.architecture", gguf::Value::string("qwen3"));
    gguf::Metadata q;
    for (const auto& [k, v] : m.entries()) {
        std::string key = k;
        if (key.starts_with("gpt-oss.")) key = "qwen3." + key.substr(8);
        q.set(key, v);
    }
    EXPECT_THROW(runtime::HParams::from_metadata(q), runtime::Error);
}

}  // namespace
