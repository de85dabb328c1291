// CUDA attention (label gpu) against the CPU's attend() over the same cache bytes: every KV cache type,
// head sizes 32..256, GQA groups, 1 to 512 tokens, positions up to n_ctx, and the split (decode) and
// tiled (prefill) paths. Cache rows past the live length are filled with NaN so that reading one shows,
// and outputs are poisoned. A last test captures RoPE + KV store + attention in a CUDA graph once and
// replays it at successive positions (the position read from device memory).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cpu/ops.h"
#include "cuda/matmul_kernels.h"
#include "cuda/op_kernels.h"
#include "cuda_test_support.h"
#include "gguf/types.h"
#include "quant/quant.h"

namespace {

using cuda_test::close;
using cuda_test::DevMem;
using cuda_test::random_floats;
using cuda_test::to_device;
using gguf::GgmlType;
namespace rc = runtime::cuda;

// CPU attention over a cache in its stored form: out[t][h*hd..] for tokens at pos0 + t, as cpu_backend.cpp
// (each KV head dequantized once, keys transposed, then attend() per (token, head)).
std::vector<float> attention_reference(const std::vector<float>& q, int64_t ldq, const std::vector<uint8_t>& kc,
                                       GgmlType tk, const std::vector<uint8_t>& vc, GgmlType tv, int n_tok, int pos0,
                                       int n_head, int n_head_kv, int hd, float scale) {
    const int n_live = pos0 + n_tok;
    const int64_t nk = static_cast<int64_t>(n_head_kv) * hd;
    const size_t rk = gguf::row_size(tk, nk), rv = gguf::row_size(tv, nk);
    const int64_t ld = (n_live + runtime::cpu::kAttendPad - 1) / runtime::cpu::kAttendPad * runtime::cpu::kAttendPad + 16;
    std::vector<float> krow(static_cast<size_t>(nk)), vrow(static_cast<size_t>(nk));
    std::vector<std::vector<float>> kt(static_cast<size_t>(n_head_kv), std::vector<float>(static_cast<size_t>(hd * ld), 0.f));
    std::vector<std::vector<float>> vf(static_cast<size_t>(n_head_kv), std::vector<float>(static_cast<size_t>(n_live) * hd));
    for (int p = 0; p < n_live; ++p) {
        quant::dequantize_row(tk, kc.data() + static_cast<size_t>(p) * rk, krow.data(), nk);
        quant::dequantize_row(tv, vc.data() + static_cast<size_t>(p) * rv, vrow.data(), nk);
        for (int g = 0; g < n_head_kv; ++g) {
            for (int d = 0; d < hd; ++d) {
                kt[static_cast<size_t>(g)][static_cast<size_t>(d * ld + p)] = krow[static_cast<size_t>(g * hd + d)];
                vf[static_cast<size_t>(g)][static_cast<size_t>(p * hd + d)] = vrow[static_cast<size_t>(g * hd + d)];
            }
        }
    }
    const int group = n_head / n_head_kv;
    std::vector<float> out(static_cast<size_t>(n_tok) * n_head * hd), scores(static_cast<size_t>(ld));
    for (int t = 0; t < n_tok; ++t) {
        for (int h = 0; h < n_head; ++h) {
            const int g = h / group;
            runtime::cpu::attend(q.data() + t * ldq + h * hd, scale, kt[static_cast<size_t>(g)].data(), ld, hd,
                                 vf[static_cast<size_t>(g)].data(), hd, pos0 + t + 1, scores.data(),
                                 out.data() + (static_cast<size_t>(t) * n_head + h) * hd);
        }
    }
    return out;
}

struct Case {
    int n_tok, pos0, n_ctx, n_head, n_head_kv, hd;
    GgmlType tk, tv;
    float q_amp = 1.0f;
};

std::string describe(const Case& c) {
    return "attention n_tok=" + std::to_string(c.n_tok) + " pos0=" + std::to_string(c.pos0) + " n_ctx=" +
           std::to_string(c.n_ctx) + " heads=" + std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) +
           " head_dim=" + std::to_string(c.hd) + " k=" + std::string(gguf::type_name(c.tk)) + " v=" +
           std::string(gguf::type_name(c.tv)) + " q_amp=" + std::to_string(c.q_amp);
}

// Cache bytes for n_ctx rows: the first n_live quantized from random keys/values, the rest all-ones bytes
// (NaN in every type's scale or value), which no causal read may touch.
std::vector<uint8_t> random_cache(GgmlType type, int n_ctx, int n_live, int64_t nk, uint32_t seed) {
    const size_t row = gguf::row_size(type, nk);
    std::vector<uint8_t> c(row * static_cast<size_t>(n_ctx), 0xFF);
    const auto x = random_floats(static_cast<size_t>(n_live * nk), seed, 1.0f);
    quant::quantize_rows(type, x.data(), c.data(), n_live, nk);
    return c;
}

// Tolerances: the f32 kernel follows the CPU to rounding; the tensor-core kernel splits queries, keys,
// values and probabilities into two f16 values each (22 bits; the lo x lo products dropped: 2^-22
// relative; the tensor cores' f32 accumulation), so it follows the CPU to ~1e-5. Plain f16 operands (2^-11
// each) would move the outputs (averages of values in [-1, 1]) by a few 1e-4 and fail these bounds.
constexpr double kRtolF32 = 1e-5, kAtolF32 = 2e-6;
constexpr double kRtolTc = 1e-4, kAtolTc = 5e-5;

struct Errors {
    double f32 = 0, tc = 0;
};

// Runs the case through both kernels (the f32 one by choice or by Auto, as the batch size decides).
Errors run_case(const Case& c, uint32_t seed) {
    const std::string what = describe(c);
    const int64_t nk = static_cast<int64_t>(c.n_head_kv) * c.hd, ldq = static_cast<int64_t>(c.n_head) * c.hd + 8;
    const int64_t ldo = static_cast<int64_t>(c.n_head) * c.hd + 4;
    const int n_live = c.pos0 + c.n_tok;
    const auto kc = random_cache(c.tk, c.n_ctx, n_live, nk, seed);
    const auto vc = random_cache(c.tv, c.n_ctx, n_live, nk, seed + 1);
    const auto q = random_floats(static_cast<size_t>(c.n_tok * ldq), seed + 2, c.q_amp);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    const auto ref = attention_reference(q, ldq, kc, c.tk, vc, c.tv, c.n_tok, c.pos0, c.n_head, c.n_head_kv, c.hd, scale);

    auto dq = to_device(q);
    auto dk = to_device(kc);
    auto dv = to_device(vc);
    auto dpos = to_device(std::vector<int32_t>{c.pos0});
    Errors errors;
    const rc::AttentionKernel f32 =
        c.n_tok <= rc::kAttentionSplitMaxTokens ? rc::AttentionKernel::Auto : rc::AttentionKernel::F32;
    for (rc::AttentionKernel kernel : {f32, rc::AttentionKernel::TensorCore}) {
        const bool tc = kernel == rc::AttentionKernel::TensorCore;
        const std::string label = what + (tc ? " [tensor cores]" : " [f32]");
        DevMem dout(static_cast<size_t>(c.n_tok * ldo) * sizeof(float));
        dout.poison();
        DevMem scratch(rc::attention_scratch_bytes(c.n_tok, c.n_head, c.hd, c.n_ctx));
        scratch.poison();
        const int64_t n = static_cast<int64_t>(c.n_head) * c.hd;
        // the f32 kernel also writes the output's q8_1 rows
        const size_t q8_bytes = rc::q8_1_row_bytes(n) * static_cast<size_t>(c.n_tok);
        DevMem dq8(q8_bytes), dq8_ref(q8_bytes);
        dq8.poison(0x55);
        rc::attention(dq->get<float>(), ldq, dk->get(), c.tk, gguf::row_size(c.tk, nk), dv->get(), c.tv,
                      gguf::row_size(c.tv, nk), c.n_tok, c.n_head, c.n_head_kv, c.hd, c.hd, scale, dpos->get<int32_t>(),
                      c.n_ctx, dout.get<float>(), ldo, scratch.get(), nullptr, kernel, tc ? nullptr : dq8.get());
        cuda_test::sync();
        const auto got = dout.download<float>();
        if (!tc) {
            rc::quantize_rows_q8_1(dout.get<float>(), ldo, n, c.n_tok, dq8_ref.get(), nullptr);
            cuda_test::sync();
            EXPECT_EQ(dq8.download<uint8_t>(), dq8_ref.download<uint8_t>()) << label << ": q8_1 rows";
        }
        EXPECT_TRUE(close(label, got.data(), ldo, ref.data(), n, c.n_tok, n, tc ? kRtolTc : kRtolF32,
                          tc ? kAtolTc : kAtolF32, tc ? &errors.tc : &errors.f32));
        EXPECT_TRUE(cuda_test::padding_untouched(label, got, ldo, n, c.n_tok));
    }
    return errors;
}

void print_errors(const char* what, const Errors& e) {
    std::printf("%s: max |GPU - CPU| f32 kernel %.3g, tensor-core kernel %.3g\n", what, e.f32, e.tc);
}

void merge(Errors& into, const Errors& e) {
    into.f32 = std::max(into.f32, e.f32);
    into.tc = std::max(into.tc, e.tc);
}

TEST(CudaAttention, DecodeEveryCacheTypeAndHeadSize) {
    REQUIRE_GPU();
    const std::pair<GgmlType, GgmlType> types[] = {{GgmlType::F32, GgmlType::F32},
                                                   {GgmlType::F16, GgmlType::F16},
                                                   {GgmlType::Q8_0, GgmlType::Q8_0},
                                                   {GgmlType::Q4_0, GgmlType::Q4_0},
                                                   {GgmlType::F16, GgmlType::Q4_0}};
    Errors max_err;
    uint32_t seed = 1;
    for (const auto& [tk, tv] : types) {
        for (int hd : {32, 64, 128, 256}) {
            // one token at the last position of the context: the split path over every split
            merge(max_err, run_case({1, 999, 1000, 32, 4, hd, tk, tv}, seed += 10));
            // a batch: tiles of several rows per warp (f32) and of 64 rows (tensor cores)
            merge(max_err, run_case({40, 300, 400, 16, 4, hd, tk, tv}, seed += 10));
        }
    }
    print_errors("attention, every type and head size", max_err);
}

TEST(CudaAttention, ShapesAndPaths) {
    REQUIRE_GPU();
    const Case cases[] = {
        // split path: several tokens with different causal limits, most splits past the live length
        {7, 100, 4096, 8, 4, 64, GgmlType::Q8_0, GgmlType::Q8_0},
        // the largest batch that splits (tiles of 2 rows per warp), and the smallest that does not
        {16, 33, 256, 16, 2, 128, GgmlType::F16, GgmlType::F16},
        {17, 40, 256, 16, 2, 128, GgmlType::F16, GgmlType::F16},
        // prefill: a full context from position 0; after a pre-filled cache up to exactly n_ctx
        {512, 0, 512, 16, 2, 128, GgmlType::F16, GgmlType::F16},
        {512, 1000, 1512, 32, 4, 64, GgmlType::Q8_0, GgmlType::Q8_0},
        {512, 0, 600, 8, 4, 32, GgmlType::Q4_0, GgmlType::Q8_0},
        {100, 27, 200, 8, 2, 256, GgmlType::F32, GgmlType::F16},
        {513, 0, 513, 32, 4, 128, GgmlType::F16, GgmlType::F16},
        // no grouping (MHA); one position only; the last positions of the context
        {7, 3, 64, 4, 4, 32, GgmlType::F32, GgmlType::F32},
        {1, 0, 4096, 32, 4, 128, GgmlType::Q8_0, GgmlType::Q8_0},
        {3, 4093, 4096, 32, 4, 128, GgmlType::Q4_0, GgmlType::Q4_0},
        // long context with sharp scores (large queries): the running maximum moves often, 128 splits
        {1, 32767, 32768, 32, 4, 128, GgmlType::F16, GgmlType::F16, 4.0f},
        {2, 20000, 32768, 16, 2, 64, GgmlType::Q8_0, GgmlType::Q4_0, 6.0f},
        {64, 3000, 4096, 32, 4, 128, GgmlType::F16, GgmlType::F16, 4.0f},
    };
    Errors max_err;
    uint32_t seed = 1000;
    for (const Case& c : cases) merge(max_err, run_case(c, seed += 10));
    print_errors("attention shapes", max_err);
}

// An f16 cache streams its tiles into two shared-memory stages while the block computes (cp.async): one
// tile (part of one), exactly two, and many with a partial last one, for every head size (tiles of 64
// positions, 32 at 256). Small enough for compute-sanitizer racecheck.
TEST(CudaAttention, F16CacheTilesStreamInTwoStages) {
    REQUIRE_GPU();
    Errors max_err;
    uint32_t seed = 2000;
    for (int hd : {32, 64, 128, 256}) {
        const int kN = hd <= 128 ? 64 : 32;
        for (const Case& c : {Case{20, 0, 20, 8, 2, hd, GgmlType::F16, GgmlType::F16},
                              Case{20, 2 * kN - 20, 2 * kN, 8, 2, hd, GgmlType::F16, GgmlType::F16},
                              Case{40, 5 * kN + 3, 6 * kN + 50, 8, 2, hd, GgmlType::F16, GgmlType::F16, 4.0f}}) {
            merge(max_err, run_case(c, seed += 10));
        }
    }
    print_errors("attention, f16 tiles", max_err);
}

TEST(CudaAttention, AutoUsesTensorCoresForBatchesOnly) {
    REQUIRE_GPU();
    // Auto on a batch must equal the tensor-core kernel bit for bit, and on few tokens the f32 kernel
    const int n_head = 8, n_head_kv = 2, hd = 64, n_ctx = 256, pos0 = 10;
    const int64_t nq = n_head * hd, nk = n_head_kv * hd;
    const GgmlType t = GgmlType::F16;
    const size_t row = gguf::row_size(t, nk);
    auto dk = to_device(random_cache(t, n_ctx, n_ctx, nk, 31));
    auto dv = to_device(random_cache(t, n_ctx, n_ctx, nk, 32));
    auto dpos = to_device(std::vector<int32_t>{pos0});
    for (int n_tok : {rc::kAttentionSplitMaxTokens, rc::kAttentionSplitMaxTokens + 1}) {
        auto dq = to_device(random_floats(static_cast<size_t>(n_tok * nq), 33));
        DevMem scratch(rc::attention_scratch_bytes(n_tok, n_head, hd, n_ctx));
        std::vector<std::vector<float>> outs;
        for (auto kernel : {rc::AttentionKernel::Auto, rc::AttentionKernel::F32, rc::AttentionKernel::TensorCore}) {
            DevMem out(static_cast<size_t>(n_tok * nq) * sizeof(float));
            rc::attention(dq->get<float>(), nq, dk->get(), t, row, dv->get(), t, row, n_tok, n_head, n_head_kv, hd, hd,
                          0.125f, dpos->get<int32_t>(), n_ctx, out.get<float>(), nq, scratch.get(), nullptr, kernel);
            cuda_test::sync();
            outs.push_back(out.download<float>());
        }
        const auto& expected = n_tok > rc::kAttentionSplitMaxTokens ? outs[2] : outs[1];
        EXPECT_TRUE(cuda_test::same_bytes("Auto with " + std::to_string(n_tok) + " tokens", outs[0].data(),
                                          expected.data(), expected.size() * sizeof(float)));
    }
}

// RoPE on Q and K, the K and V stores and attention, captured once in a CUDA graph and replayed at
// positions from 0 to n_ctx - 1 with the position and the new rows written to the same device buffers
// before each replay: the graph must follow the position (read from device memory), not the one at
// capture, including the positions per split, which grow with the live length past 8192.
TEST(CudaAttention, GraphReplayFollowsDevicePosition) {
    REQUIRE_GPU();
    const int n_ctx = 16384, n_head = 8, n_head_kv = 2, hd = 64;
    const int positions[] = {0, 1, 2, 31, 32, 63, 64, 65, 100, 1000, 4097, 8191, 8192, 8193, 12345, 16382, 16383};
    const GgmlType tk = GgmlType::Q8_0, tv = GgmlType::F16;
    const int64_t nq = n_head * hd, nk = n_head_kv * hd;
    const size_t rk = gguf::row_size(tk, nk), rv = gguf::row_size(tv, nk);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<double> inv_freq;
    for (int i = 0; i < hd / 2; ++i) inv_freq.push_back(std::pow(10000.0, -2.0 * i / hd));
    auto dfreq = to_device(inv_freq);
    DevMem dpos(sizeof(int32_t)), dq(nq * sizeof(float)), dk(nk * sizeof(float)), dvv(nk * sizeof(float));
    DevMem kc(rk * n_ctx), vc(rv * n_ctx), dout(nq * sizeof(float));
    // every row holds data already; each replay overwrites the row of its position
    kc.upload(random_cache(tk, n_ctx, n_ctx, nk, 4000));
    vc.upload(random_cache(tv, n_ctx, n_ctx, nk, 4001));
    DevMem scratch(rc::attention_scratch_bytes(1, n_head, hd, n_ctx));
    cudaStream_t stream;
    cuda_test::ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaGraph_t graph;
    cuda_test::ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    rc::rope(dq.get<float>(), nq, 1, n_head, hd, hd, true, dpos.get<int32_t>(), dfreq->get<double>(), stream);
    rc::rope(dk.get<float>(), nk, 1, n_head_kv, hd, hd, true, dpos.get<int32_t>(), dfreq->get<double>(), stream);
    rc::kv_store(tk, dk.get<float>(), nk, 1, nk, kc.get(), rk, dpos.get<int32_t>(), stream);
    rc::kv_store(tv, dvv.get<float>(), nk, 1, nk, vc.get(), rv, dpos.get<int32_t>(), stream);
    rc::attention(dq.get<float>(), nq, kc.get(), tk, rk, vc.get(), tv, rv, 1, n_head, n_head_kv, hd, hd, scale,
                  dpos.get<int32_t>(), n_ctx, dout.get<float>(), nq, scratch.get(), stream);
    cuda_test::ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec;
    cuda_test::ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");

    std::vector<double> angles(inv_freq.size());
    double max_err = 0;
    for (int pos : positions) {
        const auto q = random_floats(static_cast<size_t>(nq), 5000 + pos);
        const auto k = random_floats(static_cast<size_t>(nk), 6000 + pos);
        const auto v = random_floats(static_cast<size_t>(nk), 7000 + pos);
        dq.upload(q);
        dk.upload(k);
        dvv.upload(v);
        dpos.upload(std::vector<int32_t>{pos});
        cuda_test::sync();  // the uploads ran on the legacy stream; the graph runs on `stream`
        cuda_test::ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
        cuda_test::ok(cudaStreamSynchronize(stream), "graph replay");
        // the rotated query against the CPU's RoPE; then attention over the cache as the device holds it
        std::vector<float> q_ref = q;
        std::vector<float> c(inv_freq.size()), s(inv_freq.size());
        for (size_t i = 0; i < inv_freq.size(); ++i) {
            c[i] = static_cast<float>(std::cos(pos * inv_freq[i]));
            s[i] = static_cast<float>(std::sin(pos * inv_freq[i]));
        }
        for (int h = 0; h < n_head; ++h) runtime::cpu::rope(q_ref.data() + h * hd, c.data(), s.data(), hd, runtime::RopeMode::Neox);
        const auto q_dev = dq.download<float>();
        const std::string what = "graph replay at position " + std::to_string(pos);
        EXPECT_TRUE(close(what + " (rope)", q_dev.data(), nq, q_ref.data(), nq, 1, nq, 1e-6, 1e-6));
        const auto k_cache = kc.download<uint8_t>();
        const auto v_cache = vc.download<uint8_t>();
        const auto ref = attention_reference(q_dev, nq, k_cache, tk, v_cache, tv, 1, pos, n_head, n_head_kv, hd, scale);
        const auto got = dout.download<float>();
        EXPECT_TRUE(close(what, got.data(), nq, ref.data(), nq, 1, nq, 1e-5, 2e-6, &max_err));
    }
    std::printf("graph replay: max |GPU - CPU| %.3g\n", max_err);
    cuda_test::ok(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
    cuda_test::ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
    cuda_test::ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
}

}  // namespace
