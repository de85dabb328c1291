// The CPU experts step (run_experts through CpuExecutor::experts): results do not depend on the thread
// count (each row's result comes from the same tiles whatever the split), match a double-precision
// reference on the dequantized weights, and a token decoded alone agrees with its row of a batch.
// Shapes leave partial row groups, routing is uneven (one expert takes most slots, some none), and
// the second case has gate and up weights of different activation formats.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace {

using gguf::GgmlType;
using runtime::Device;
using runtime::Routing;
using runtime::Tensor;

struct Case {
    const char* name;
    uint32_t n_embd, n_ff, n_expert, k;
    GgmlType gate, up, down;
};

class ExpertsTest : public ::testing::TestWithParam<Case> {};

struct Stack {
    runtime::Weight w;
    std::vector<uint8_t> bytes;
    std::vector<float> deq;  // n_mat x n_out x n_in
};

Stack make_stack(GgmlType type, int64_t n_mat, int64_t n_out, int64_t n_in, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 0.5f);
    std::vector<float> f(static_cast<size_t>(n_mat * n_out * n_in));
    for (auto& v : f) v = normal(rng);
    Stack s;
    s.w.type = type;
    s.w.n_in = n_in;
    s.w.n_out = n_out;
    s.w.n_mat = n_mat;
    s.w.row_bytes = gguf::row_size(type, static_cast<uint64_t>(n_in));
    s.bytes.resize(s.w.row_bytes * static_cast<size_t>(n_mat * n_out));
    quant::quantize_rows(type, f.data(), s.bytes.data(), n_mat * n_out, n_in);
    s.w.data = s.bytes.data();
    s.deq.resize(f.size());
    for (int64_t r = 0; r < n_mat * n_out; ++r) quant::dequantize_row(type, s.w.row(0, r), s.deq.data() + r * n_in, n_in);
    return s;
}

runtime::HParams params(const Case& c) {
    runtime::HParams hp;
    hp.arch = runtime::Arch::Qwen3Moe;
    hp.n_embd = c.n_embd;
    hp.n_layer = 1;
    hp.n_head = hp.n_head_kv = 2;
    hp.head_dim_k = hp.head_dim_v = c.n_embd / 2;
    hp.n_expert = c.n_expert;
    hp.n_expert_used = c.k;
    hp.n_ff_exp = c.n_ff;
    hp.rms_eps = 1e-6f;
    hp.n_rot = 16;
    return hp;
}

// out rows for tokens [t0, t0 + n) of x with routing (ids, wts), on n_threads threads
std::vector<float> run(const Case& c, const runtime::LayerWeights& L, const std::vector<float>& x, std::vector<int32_t> ids,
                       std::vector<float> wts, int t0, int n, int n_batch, int n_threads) {
    const runtime::HParams hp = params(c);
    runtime::cpu::CpuExecutor ex(hp, {64, n_batch, n_threads, 8}, std::vector<double>(hp.n_rot / 2, 1.0));
    std::vector<float> xin(x.begin() + t0 * c.n_embd, x.begin() + (t0 + n) * c.n_embd);
    std::vector<float> out(static_cast<size_t>(n) * c.n_embd, -1.0f);
    const Tensor xt{xin.data(), n, c.n_embd, c.n_embd, Device::cpu()};
    const Tensor ot{out.data(), n, c.n_embd, c.n_embd, Device::cpu()};
    const Routing r{ids.data() + t0 * c.k, wts.data() + t0 * c.k, n, static_cast<int>(c.k), Device::cpu()};
    ex.experts(L, xt, r, ot);
    return out;
}

TEST_P(ExpertsTest, ThreadCountsAgreeAndMatchTheReference) {
    const Case c = GetParam();
    for (GgmlType t : {c.gate, c.up, c.down}) {
        if (!quant::can_quantize(t)) GTEST_SKIP() << gguf::type_name(t) << " not in this libquant";
    }
    std::mt19937 rng(7);
    const Stack gate = make_stack(c.gate, c.n_expert, c.n_ff, c.n_embd, rng);
    const Stack up = make_stack(c.up, c.n_expert, c.n_ff, c.n_embd, rng);
    const Stack down = make_stack(c.down, c.n_expert, c.n_embd, c.n_ff, rng);
    runtime::LayerWeights L;
    L.gate_exps = gate.w;
    L.up_exps = up.w;
    L.down_exps = down.w;

    // 11 tokens; expert 1 is every token's first choice, the last expert is never chosen
    const int n_tok = 11;
    const int K = static_cast<int>(c.k), E = static_cast<int>(c.n_expert);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n_tok) * c.n_embd);
    for (auto& v : x) v = normal(rng);
    std::vector<int32_t> ids(static_cast<size_t>(n_tok * K));
    std::vector<float> wts(ids.size());
    for (int t = 0; t < n_tok; ++t) {
        for (int j = 0; j < K; ++j) {
            ids[t * K + j] = j == 0 ? 1 : (1 + j + t) % (E - 1) == 1 ? 0 : (1 + j + t) % (E - 1);
            wts[t * K + j] = 0.25f + 0.5f * j / K;
        }
    }

    const std::vector<float> one = run(c, L, x, ids, wts, 0, n_tok, n_tok, 1);
    for (int threads : {2, 3, 5, 16}) {
        EXPECT_EQ(run(c, L, x, ids, wts, 0, n_tok, n_tok, threads), one) << threads << " threads";
    }

    // reference: f32 activations, dequantized weights, double sums
    double err = 0, norm = 0;
    std::vector<double> h(c.n_ff), o(c.n_embd);
    for (int t = 0; t < n_tok; ++t) {
        std::fill(o.begin(), o.end(), 0.0);
        for (int j = 0; j < K; ++j) {
            const int64_t e = ids[t * K + j];
            for (int64_t f = 0; f < c.n_ff; ++f) {
                double g = 0, u = 0;
                const float* gr = gate.deq.data() + (e * c.n_ff + f) * c.n_embd;
                const float* ur = up.deq.data() + (e * c.n_ff + f) * c.n_embd;
                for (int64_t d = 0; d < c.n_embd; ++d) {
                    g += double(gr[d]) * x[t * c.n_embd + d];
                    u += double(ur[d]) * x[t * c.n_embd + d];
                }
                h[f] = g / (1.0 + std::exp(-g)) * u;
            }
            for (int64_t i = 0; i < c.n_embd; ++i) {
                const float* dr = down.deq.data() + (e * c.n_embd + i) * c.n_ff;
                double s = 0;
                for (int64_t f = 0; f < c.n_ff; ++f) s += double(dr[f]) * h[f];
                o[i] += wts[t * K + j] * s;
            }
        }
        for (int64_t i = 0; i < c.n_embd; ++i) {
            err += (o[i] - one[t * c.n_embd + i]) * (o[i] - one[t * c.n_embd + i]);
            norm += o[i] * o[i];
        }
    }
    EXPECT_LT(std::sqrt(err / norm), 0.03) << "relative error against the reference";

    // decode-size batches (run_decode: down rows taken as experts come ready): the same bits at any thread
    // count, 1 and 3 tokens
    for (int n : {1, 3}) {
        const std::vector<float> base = run(c, L, x, ids, wts, 4, n, n_tok, 1);
        for (int threads : {2, 3, 5, 16}) {
            EXPECT_EQ(run(c, L, x, ids, wts, 4, n, n_tok, threads), base) << n << " tokens, " << threads << " threads";
        }
    }

    // a token decoded alone (one row per expert: the decode kernels) agrees with its row of the batch
    for (int t : {0, 6}) {
        const std::vector<float> alone = run(c, L, x, ids, wts, t, 1, n_tok, 3);
        double d = 0, n2 = 0;
        for (int64_t i = 0; i < c.n_embd; ++i) {
            d += std::pow(alone[i] - one[t * c.n_embd + i], 2);
            n2 += std::pow(one[t * c.n_embd + i], 2);
        }
        EXPECT_LT(std::sqrt(d / n2), 1e-5) << "token " << t;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ExpertsTest,
    ::testing::Values(
        // partial row groups (40 and 96 rows), down in a float type, gate and up in one format
        Case{"q8_0_q4_0_f16", 96, 40, 6, 2, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F16},
        // gate and up in different activation formats (Q8_K, Q8_0); Q6_K down
        Case{"q4_K_q8_0_q6_K", 256, 256, 5, 3, GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q6_K}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace

