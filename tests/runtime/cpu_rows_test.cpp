// The CPU executor's row-wise ops split a prompt's tokens over the threads (decode stays on the calling
// thread): every token's row must come out the same whatever the thread count and batch size, and the
// fused norm_rope_qk must equal the separate norm and RoPE passes it replaces.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "cpu/cpu_backend.h"

namespace {

using runtime::Device;
using runtime::Tensor;

runtime::HParams params() {
    runtime::HParams hp;
    hp.arch = runtime::Arch::Qwen3Moe;
    hp.n_embd = 64;
    hp.n_layer = 1;
    hp.n_head = 4;
    hp.n_head_kv = 2;
    hp.head_dim_k = hp.head_dim_v = 16;
    hp.n_expert = 8;
    hp.n_expert_used = 3;
    hp.n_ff_exp = 32;
    hp.rms_eps = 1e-6f;
    hp.n_rot = 16;
    hp.rope_mode = runtime::RopeMode::Neox;
    return hp;
}

struct Outputs {
    std::vector<float> norm, q, k, sum, swi;
    std::vector<int32_t> ids;
    std::vector<float> weights;
};

// The ops on n rows of fixed inputs (row t depends only on t), with `fused` choosing norm_rope_qk or the
// base class's four passes.
Outputs run(int n, int n_threads, bool fused) {
    const runtime::HParams hp = params();
    const int n_batch = 64;
    std::vector<double> inv_freq(hp.n_rot / 2);
    for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = 1.0 / (1.0 + static_cast<double>(i));
    runtime::cpu::CpuExecutor ex(hp, {128, n_batch, n_threads, 8}, inv_freq);
    ex.begin({n, 5});
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto rows = [&](int64_t cols) {
        std::vector<float> v(static_cast<size_t>(n_batch * cols));
        for (auto& x : v) x = normal(rng);
        v.resize(static_cast<size_t>(n * cols));
        return v;
    };
    Outputs o;
    std::vector<float> x = rows(64), w(64), hw(16, 1.25f);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + 0.01f * static_cast<float>(i);
    o.norm.resize(x.size());
    ex.rms_norm({x.data(), n, 64, 64, Device::cpu()}, w.data(), 1e-6f, {o.norm.data(), n, 64, 64, Device::cpu()});
    o.q = rows(64);
    o.k = rows(32);
    const Tensor q{o.q.data(), n, 64, 64, Device::cpu()}, k{o.k.data(), n, 32, 32, Device::cpu()};
    if (fused) {
        ex.norm_rope_qk(q, hw.data(), k, hw.data(), 16, 1e-6f);
    } else {
        ex.Executor::norm_rope_qk(q, hw.data(), k, hw.data(), 16, 1e-6f);
    }
    o.sum = rows(64);
    const std::vector<float> y = rows(64);
    ex.add({o.sum.data(), n, 64, 64, Device::cpu()}, {const_cast<float*>(y.data()), n, 64, 64, Device::cpu()});
    std::vector<float> gate = rows(32), up = rows(32);
    o.swi.resize(gate.size());
    ex.swiglu({gate.data(), n, 32, 32, Device::cpu()}, {up.data(), n, 32, 32, Device::cpu()},
              {o.swi.data(), n, 32, 32, Device::cpu()});
    std::vector<float> logits = rows(8);
    const runtime::Routing r = ex.routing(n, 3);
    ex.route({logits.data(), n, 8, 8, Device::cpu()}, {3, true, 0.0f, false}, r);
    o.ids.assign(r.ids, r.ids + n * 3);
    o.weights.assign(r.weights, r.weights + n * 3);
    return o;
}

TEST(CpuRows, ThreadCountsBatchSizesAndTheFusedQkStepAgree) {
    const Outputs one = run(48, 1, false);
    for (int threads : {1, 3, 8}) {
        const Outputs o = run(48, threads, true);
        EXPECT_EQ(o.norm, one.norm) << threads;
        EXPECT_EQ(o.q, one.q) << threads;
        EXPECT_EQ(o.k, one.k) << threads;
        EXPECT_EQ(o.sum, one.sum) << threads;
        EXPECT_EQ(o.swi, one.swi) << threads;
        EXPECT_EQ(o.ids, one.ids) << threads;
        EXPECT_EQ(o.weights, one.weights) << threads;
    }
    // a short batch (below the parallel threshold) gives the first rows of the long one
    const Outputs few = run(3, 8, true);
    EXPECT_EQ(few.norm, std::vector<float>(one.norm.begin(), one.norm.begin() + 3 * 64));
    EXPECT_EQ(few.q, std::vector<float>(one.q.begin(), one.q.begin() + 3 * 64));
    EXPECT_EQ(few.ids, std::vector<int32_t>(one.ids.begin(), one.ids.begin() + 9));
}

}  // namespace
