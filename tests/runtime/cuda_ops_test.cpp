// The CUDA block kernels other than attention (label gpu) against the CPU reference: RMSNorm, the Q/K norms,
// RoPE, KV-cache stores, MoE routing, the element-wise steps and the embedding lookup. Random data, ragged
// and strided shapes, outputs poisoned with NaN so that an unwritten element fails. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "cpu/ops.h"
#include "cuda/matmul_kernels.h"
#include "cuda/op_kernels.h"
#include "cuda_test_support.h"
#include "gguf/types.h"
#include "quant/float16.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace {

using cuda_test::close;
using cuda_test::DevMem;
using cuda_test::padding_untouched;
using cuda_test::random_floats;
using cuda_test::to_device;
using gguf::GgmlType;
namespace rc = runtime::cuda;

std::string shape(const char* op, std::initializer_list<std::pair<const char*, double>> dims) {
    std::string s = op;
    for (const auto& [k, v] : dims) s += std::string(" ") + k + "=" + std::to_string(static_cast<long long>(v));
    return s;
}

TEST(CudaOps, RmsNormMatchesCpu) {
    REQUIRE_GPU();
    const float eps = 1e-6f;
    uint32_t seed = 1;
    for (int64_t n : {1, 7, 64, 4096, 5000}) {
        for (int rows : {1, 3, 17}) {
            for (bool with_w : {true, false}) {
                for (bool in_place : {false, true}) {
                    const std::string what = shape("rms_norm", {{"n", n}, {"rows", rows}, {"w", with_w}, {"in_place", in_place}});
                    const int64_t ldx = n + 3, ldy = in_place ? ldx : n + 5;
                    const auto x = random_floats(static_cast<size_t>(rows * ldx), seed++, 3.0f);
                    const auto w = random_floats(static_cast<size_t>(n), seed++, 2.0f);
                    const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
                    std::vector<float> ref(static_cast<size_t>(rows * n));
                    for (int r = 0; r < rows; ++r) {
                        runtime::cpu::rms_norm(x.data() + r * ldx, with_w ? w.data() : ones.data(), ref.data() + r * n, n, eps);
                    }
                    auto dx = to_device(x);
                    auto dw = to_device(w);
                    DevMem dy(static_cast<size_t>(rows * ldy) * sizeof(float));
                    dy.poison();
                    float* y = in_place ? dx->get<float>() : dy.get<float>();
                    rc::rms_norm(dx->get<float>(), ldx, with_w ? dw->get<float>() : nullptr, y, ldy, n, rows, eps, nullptr);
                    cuda_test::sync();
                    const auto got = in_place ? dx->download<float>() : dy.download<float>();
                    EXPECT_TRUE(close(what, got.data(), ldy, ref.data(), n, rows, n, 1e-6, 1e-12));
                    if (!in_place) {
                        EXPECT_TRUE(padding_untouched(what, got, ldy, n, rows));
                    }
                }
            }
        }
    }
}

TEST(CudaOps, AddRmsNormMatchesCpu) {
    REQUIRE_GPU();
    const float eps = 1e-5f;
    uint32_t seed = 50;
    for (int64_t n : {1, 7, 4096, 5000}) {
        for (int rows : {1, 3, 512}) {
            for (bool with_w : {true, false}) {
                const std::string what = shape("add_rms_norm", {{"n", n}, {"rows", rows}, {"w", with_w}});
                const int64_t ldx = n + 3, ldy = n + 1, ldo = n + 5;
                const auto x = random_floats(static_cast<size_t>(rows * ldx), seed++, 3.0f);
                const auto y = random_floats(static_cast<size_t>(rows * ldy), seed++, 3.0f);
                const auto w = random_floats(static_cast<size_t>(n), seed++, 2.0f);
                const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
                std::vector<float> sum = x, ref(static_cast<size_t>(rows * n));
                for (int r = 0; r < rows; ++r) {
                    for (int64_t i = 0; i < n; ++i) sum[static_cast<size_t>(r * ldx + i)] += y[static_cast<size_t>(r * ldy + i)];
                    runtime::cpu::rms_norm(sum.data() + r * ldx, with_w ? w.data() : ones.data(), ref.data() + r * n, n, eps);
                }
                auto dx = to_device(x);
                auto dy = to_device(y);
                auto dw = to_device(w);
                DevMem dout(static_cast<size_t>(rows * ldo) * sizeof(float));
                dout.poison();
                rc::add_rms_norm(dx->get<float>(), ldx, dy->get<float>(), ldy, with_w ? dw->get<float>() : nullptr,
                                 dout.get<float>(), ldo, n, rows, eps, nullptr);
                cuda_test::sync();
                const auto got_x = dx->download<float>();
                const auto got = dout.download<float>();
                EXPECT_TRUE(close(what + " (sum)", got_x.data(), ldx, sum.data(), ldx, rows, ldx, 0, 0));
                EXPECT_TRUE(close(what, got.data(), ldo, ref.data(), n, rows, n, 1e-6, 1e-12));
                EXPECT_TRUE(padding_untouched(what, got, ldo, n, rows));
            }
        }
    }
}

// The norms' optional q8_1 copy of their output rows equals quantize_rows_q8_1 of those rows, byte for byte.
TEST(CudaOps, NormsWriteTheQ8_1RowsQuantizeWouldWrite) {
    REQUIRE_GPU();
    const float eps = 1e-6f;
    uint32_t seed = 70;
    for (int64_t n : {32, 2048, 4096 + 96}) {
        for (int rows : {1, 3, 9}) {
            for (bool add : {false, true}) {
                const std::string what = shape(add ? "add_rms_norm+q8_1" : "rms_norm+q8_1", {{"n", n}, {"rows", rows}});
                const int64_t ldx = n + 3, ldo = n + 5;
                const size_t q8_bytes = rc::q8_1_row_bytes(n) * static_cast<size_t>(rows);
                auto dx = to_device(random_floats(static_cast<size_t>(rows * ldx), seed++, 3.0f));
                auto dy = to_device(random_floats(static_cast<size_t>(rows * ldx), seed++, 3.0f));
                auto dw = to_device(random_floats(static_cast<size_t>(n), seed++, 2.0f));
                DevMem dout(static_cast<size_t>(rows * ldo) * sizeof(float)), dq(q8_bytes), dref(q8_bytes);
                dq.poison(0x55);
                if (add) {
                    rc::add_rms_norm(dx->get<float>(), ldx, dy->get<float>(), ldx, dw->get<float>(), dout.get<float>(), ldo,
                                     n, rows, eps, nullptr, dq.get());
                } else {
                    rc::rms_norm(dx->get<float>(), ldx, dw->get<float>(), dout.get<float>(), ldo, n, rows, eps, nullptr,
                                 dq.get());
                }
                rc::quantize_rows_q8_1(dout.get<float>(), ldo, n, rows, dref.get(), nullptr);
                cuda_test::sync();
                EXPECT_EQ(dq.download<uint8_t>(), dref.download<uint8_t>()) << what;
            }
        }
    }
    // a row that is not whole q8_1 blocks cannot be quantized
    DevMem buf(4096);
    EXPECT_THROW(rc::rms_norm(buf.get<float>(), 40, nullptr, buf.get<float>(), 40, 40, 1, eps, nullptr, buf.get()),
                 runtime::Error);
}

TEST(CudaOps, RmsNormHeadsMatchesCpu) {
    REQUIRE_GPU();
    const float eps = 1e-5f;
    uint32_t seed = 100;
    for (int n_tok : {1, 7, 512}) {
        for (int n_head : {2, 32}) {
            for (int hd : {32, 64, 128, 256}) {
                for (bool with_w : {true, false}) {
                    const std::string what =
                        shape("rms_norm_heads", {{"n_tok", n_tok}, {"n_head", n_head}, {"head_dim", hd}, {"w", with_w}});
                    const int64_t ldx = static_cast<int64_t>(n_head) * hd + 4;
                    auto x = random_floats(static_cast<size_t>(n_tok * ldx), seed++, 2.0f);
                    const auto w = random_floats(static_cast<size_t>(hd), seed++, 2.0f);
                    const std::vector<float> ones(static_cast<size_t>(hd), 1.0f);
                    std::vector<float> ref = x;
                    for (int t = 0; t < n_tok; ++t) {
                        for (int h = 0; h < n_head; ++h) {
                            float* p = ref.data() + t * ldx + h * hd;
                            runtime::cpu::rms_norm(p, with_w ? w.data() : ones.data(), p, hd, eps);
                        }
                    }
                    auto dx = to_device(x);
                    auto dw = to_device(w);
                    rc::rms_norm_heads(dx->get<float>(), ldx, with_w ? dw->get<float>() : nullptr, n_tok, n_head, hd, eps,
                                       nullptr);
                    cuda_test::sync();
                    const auto got = dx->download<float>();
                    // the whole row, padding included: the padding must keep its input values
                    EXPECT_TRUE(close(what, got.data(), ldx, ref.data(), ldx, n_tok, ldx, 1e-6, 1e-12));
                }
            }
        }
    }
}

// inverse frequencies and per-token cos/sin exactly as Context computes them
std::vector<double> inv_freqs(int n_rot, double base, double freq_scale, const std::vector<float>& factors) {
    std::vector<double> f;
    for (int i = 0; i < n_rot / 2; ++i) {
        double v = freq_scale * std::pow(base, -2.0 * i / n_rot);
        if (!factors.empty()) v /= factors[static_cast<size_t>(i)];
        f.push_back(v);
    }
    return f;
}

void rope_reference(std::vector<float>& x, int64_t ldx, int n_tok, int n_head, int hd, int n_rot, bool neox, int pos0,
                    const std::vector<double>& inv_freq) {
    const size_t half = inv_freq.size();
    std::vector<float> c(half), s(half);
    for (int t = 0; t < n_tok; ++t) {
        const double pos = pos0 + t;
        for (size_t i = 0; i < half; ++i) {
            c[i] = static_cast<float>(std::cos(pos * inv_freq[i]));
            s[i] = static_cast<float>(std::sin(pos * inv_freq[i]));
        }
        for (int h = 0; h < n_head; ++h) {
            runtime::cpu::rope(x.data() + t * ldx + h * hd, c.data(), s.data(), n_rot,
                               neox ? runtime::RopeMode::Neox : runtime::RopeMode::Adjacent);
        }
    }
}

TEST(CudaOps, RopeMatchesCpu) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, pos0, n_head, hd, n_rot;
        bool neox;
        double base, freq_scale;
        bool factors;
    };
    const Case cases[] = {
        {1, 0, 8, 64, 64, false, 10000, 1, false},         {7, 5, 4, 128, 128, true, 1000000, 1, false},
        {512, 3000, 8, 64, 32, false, 10000, 0.25, false}, {1, 32767, 32, 128, 128, true, 1000000, 1, false},
        {3, 100, 2, 32, 32, true, 10000, 1, true},         {5, 60000, 4, 256, 256, false, 500000, 0.125, true},
        {512, 0, 2, 128, 64, true, 10000, 1, false},
    };
    double max_err = 0;
    uint32_t seed = 200;
    for (const Case& c : cases) {
        const std::string what = shape("rope", {{"n_tok", c.n_tok}, {"pos0", c.pos0}, {"n_head", c.n_head}, {"head_dim", c.hd},
                                                {"n_rot", c.n_rot}, {"neox", c.neox}, {"factors", c.factors}});
        const int64_t ldx = static_cast<int64_t>(c.n_head) * c.hd + 6;
        const auto x = random_floats(static_cast<size_t>(c.n_tok * ldx), seed++, 2.0f);
        std::vector<float> factors;
        if (c.factors) {
            factors = random_floats(static_cast<size_t>(c.n_rot / 2), seed++, 1.0f);
            for (auto& f : factors) f = 1.0f + 4.0f * std::fabs(f);
        }
        const auto inv_freq = inv_freqs(c.n_rot, c.base, c.freq_scale, factors);
        std::vector<float> ref = x;
        rope_reference(ref, ldx, c.n_tok, c.n_head, c.hd, c.n_rot, c.neox, c.pos0, inv_freq);
        auto dx = to_device(x);
        auto df = to_device(inv_freq);
        auto dpos = to_device(std::vector<int32_t>{c.pos0});
        rc::rope(dx->get<float>(), ldx, c.n_tok, c.n_head, c.hd, c.n_rot, c.neox, dpos->get<int32_t>(),
                 df->get<double>(), nullptr);
        cuda_test::sync();
        const auto got = dx->download<float>();
        // whole rows: the unrotated dimensions and the padding must be unchanged
        EXPECT_TRUE(close(what, got.data(), ldx, ref.data(), ldx, c.n_tok, ldx, 1e-6, 1e-6, &max_err));
    }
    std::printf("rope: max |GPU - CPU| over all cases %.3g (double angles on both sides)\n", max_err);
}

TEST(CudaOps, KvStoreIsBitExact) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, pos0, n_ctx;
    };
    const Case cases[] = {{1, 0, 64}, {7, 3, 64}, {512, 0, 512}, {5, 59, 64}, {1, 63, 64}};
    const int64_t n = 256, ld_src = n + 32;
    uint32_t seed = 300;
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
        for (const Case& c : cases) {
            const std::string what = std::string("kv_store ") + std::string(gguf::type_name(type)) +
                                     shape("", {{"n_tok", c.n_tok}, {"pos0", c.pos0}, {"n_ctx", c.n_ctx}});
            auto src = random_floats(static_cast<size_t>(c.n_tok * ld_src), seed++, 2.0f);
            // edge blocks of token 0: all zeros (scale 0), and a tie of +1.5 / -1.5 for Q4_0's signed maximum
            for (int j = 0; j < 32; ++j) src[static_cast<size_t>(j)] = 0.0f;
            for (int j = 32; j < 64; ++j) src[static_cast<size_t>(j)] *= 0.5f;  // below 1.5 in magnitude
            src[32 + 3] = 1.5f;
            src[32 + 7] = -1.5f;
            const size_t row_bytes = gguf::row_size(type, n);
            std::vector<uint8_t> ref(static_cast<size_t>(c.n_ctx) * row_bytes, 0xAB);
            for (int t = 0; t < c.n_tok; ++t) {
                quant::quantize_rows(type, src.data() + t * ld_src, ref.data() + static_cast<size_t>(c.pos0 + t) * row_bytes, 1,
                                     n);
            }
            auto dsrc = to_device(src);
            auto dpos = to_device(std::vector<int32_t>{c.pos0});
            DevMem cache(ref.size());
            cache.poison(0xAB);
            rc::kv_store(type, dsrc->get<float>(), ld_src, c.n_tok, n, cache.get(), row_bytes, dpos->get<int32_t>(), nullptr);
            cuda_test::sync();
            const auto got = cache.download<uint8_t>();
            EXPECT_TRUE(cuda_test::same_bytes(what, got.data(), ref.data(), ref.size()));
        }
    }
}

TEST(CudaOps, KvStoreKvStoresBothBitExact) {
    REQUIRE_GPU();
    const std::pair<GgmlType, GgmlType> types[] = {
        {GgmlType::F16, GgmlType::F16}, {GgmlType::Q8_0, GgmlType::Q4_0}, {GgmlType::F32, GgmlType::Q8_0}, {GgmlType::Q4_0, GgmlType::F16}};
    const int n_ctx = 80, pos0 = 70, n_tok = 9;
    const int64_t n_k = 256, n_v = 128, ld_k = n_k + 16, ld_v = n_v + 48;
    uint32_t seed = 350;
    for (const auto& [tk, tv] : types) {
        const std::string what = "kv_store_kv " + std::string(gguf::type_name(tk)) + "/" + std::string(gguf::type_name(tv));
        const auto k = random_floats(static_cast<size_t>(n_tok * ld_k), seed++, 2.0f);
        const auto v = random_floats(static_cast<size_t>(n_tok * ld_v), seed++, 2.0f);
        const size_t rk = gguf::row_size(tk, n_k), rv = gguf::row_size(tv, n_v);
        std::vector<uint8_t> ref_k(rk * n_ctx, 0xAB), ref_v(rv * n_ctx, 0xAB);
        for (int t = 0; t < n_tok; ++t) {
            quant::quantize_rows(tk, k.data() + t * ld_k, ref_k.data() + static_cast<size_t>(pos0 + t) * rk, 1, n_k);
            quant::quantize_rows(tv, v.data() + t * ld_v, ref_v.data() + static_cast<size_t>(pos0 + t) * rv, 1, n_v);
        }
        auto dk = to_device(k);
        auto dv = to_device(v);
        auto dpos = to_device(std::vector<int32_t>{pos0});
        DevMem kc(ref_k.size()), vc(ref_v.size());
        kc.poison(0xAB);
        vc.poison(0xAB);
        rc::kv_store_kv(tk, dk->get<float>(), ld_k, n_k, kc.get(), rk, tv, dv->get<float>(), ld_v, n_v, vc.get(), rv, n_tok,
                        dpos->get<int32_t>(), nullptr);
        cuda_test::sync();
        const auto got_k = kc.download<uint8_t>();
        const auto got_v = vc.download<uint8_t>();
        EXPECT_TRUE(cuda_test::same_bytes(what + " keys", got_k.data(), ref_k.data(), ref_k.size()));
        EXPECT_TRUE(cuda_test::same_bytes(what + " values", got_v.data(), ref_v.data(), ref_v.size()));
    }
}

TEST(CudaOps, NormRopeQkEqualsSeparateKernels) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, pos0, n_head, n_head_kv, hd, n_rot;
        bool neox, norms;
    };
    const Case cases[] = {{1, 0, 32, 4, 128, 128, true, true},  {7, 500, 16, 2, 64, 64, false, true},
                          {512, 3, 8, 4, 128, 64, true, false}, {3, 40000, 4, 4, 256, 256, true, true},
                          {5, 9, 8, 2, 32, 32, false, false}};
    const float eps = 1e-6f;
    uint32_t seed = 250;
    for (const Case& c : cases) {
        const std::string what = shape("norm_rope_qk", {{"n_tok", c.n_tok}, {"pos0", c.pos0}, {"heads", c.n_head},
                                                        {"kv_heads", c.n_head_kv}, {"head_dim", c.hd}, {"n_rot", c.n_rot},
                                                        {"neox", c.neox}, {"norms", c.norms}});
        const int64_t ldq = static_cast<int64_t>(c.n_head) * c.hd + 2, ldk = static_cast<int64_t>(c.n_head_kv) * c.hd + 6;
        const auto q = random_floats(static_cast<size_t>(c.n_tok * ldq), seed++, 2.0f);
        const auto k = random_floats(static_cast<size_t>(c.n_tok * ldk), seed++, 2.0f);
        const auto qw = random_floats(static_cast<size_t>(c.hd), seed++, 2.0f);
        const auto kw = random_floats(static_cast<size_t>(c.hd), seed++, 2.0f);
        const auto inv_freq = inv_freqs(c.n_rot, 1000000.0, 1.0, {});
        // CPU: the norms (cpu::rms_norm per head) then RoPE
        std::vector<float> ref_q = q, ref_k = k;
        for (int t = 0; t < c.n_tok && c.norms; ++t) {
            for (int h = 0; h < c.n_head; ++h) {
                float* p = ref_q.data() + t * ldq + h * c.hd;
                runtime::cpu::rms_norm(p, qw.data(), p, c.hd, eps);
            }
            for (int h = 0; h < c.n_head_kv; ++h) {
                float* p = ref_k.data() + t * ldk + h * c.hd;
                runtime::cpu::rms_norm(p, kw.data(), p, c.hd, eps);
            }
        }
        rope_reference(ref_q, ldq, c.n_tok, c.n_head, c.hd, c.n_rot, c.neox, c.pos0, inv_freq);
        rope_reference(ref_k, ldk, c.n_tok, c.n_head_kv, c.hd, c.n_rot, c.neox, c.pos0, inv_freq);

        auto dqw = to_device(qw);
        auto dkw = to_device(kw);
        auto df = to_device(inv_freq);
        auto dpos = to_device(std::vector<int32_t>{c.pos0});
        // fused
        auto dq = to_device(q);
        auto dk = to_device(k);
        rc::norm_rope_qk(dq->get<float>(), ldq, c.n_head, c.norms ? dqw->get<float>() : nullptr, dk->get<float>(), ldk,
                         c.n_head_kv, c.norms ? dkw->get<float>() : nullptr, c.n_tok, c.hd, eps, c.n_rot, c.neox,
                         dpos->get<int32_t>(), df->get<double>(), nullptr);
        // separate kernels
        auto dq2 = to_device(q);
        auto dk2 = to_device(k);
        if (c.norms) {
            rc::rms_norm_heads(dq2->get<float>(), ldq, dqw->get<float>(), c.n_tok, c.n_head, c.hd, eps, nullptr);
            rc::rms_norm_heads(dk2->get<float>(), ldk, dkw->get<float>(), c.n_tok, c.n_head_kv, c.hd, eps, nullptr);
        }
        rc::rope(dq2->get<float>(), ldq, c.n_tok, c.n_head, c.hd, c.n_rot, c.neox, dpos->get<int32_t>(), df->get<double>(),
                 nullptr);
        rc::rope(dk2->get<float>(), ldk, c.n_tok, c.n_head_kv, c.hd, c.n_rot, c.neox, dpos->get<int32_t>(),
                 df->get<double>(), nullptr);
        cuda_test::sync();
        const auto gq = dq->download<float>(), gk = dk->download<float>();
        const auto sq = dq2->download<float>(), sk = dk2->download<float>();
        EXPECT_TRUE(cuda_test::same_bytes(what + " Q vs separate kernels", gq.data(), sq.data(), gq.size() * 4));
        EXPECT_TRUE(cuda_test::same_bytes(what + " K vs separate kernels", gk.data(), sk.data(), gk.size() * 4));
        EXPECT_TRUE(close(what + " Q vs CPU", gq.data(), ldq, ref_q.data(), ldq, c.n_tok, ldq, 1e-6, 1e-6));
        EXPECT_TRUE(close(what + " K vs CPU", gk.data(), ldk, ref_k.data(), ldk, c.n_tok, ldk, 1e-6, 1e-6));
    }
}

// The fused Q/K norm + RoPE + both cache stores: bit for bit norm_rope_qk then kv_store_kv (themselves
// checked against the CPU above), on caches pre-filled with a pattern that must survive outside the rows
// written.
TEST(CudaOps, NormRopeQkStoreEqualsNormRopeThenStores) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, pos0, n_head, n_head_kv, hd, n_rot;
        bool neox, norms;
        GgmlType tk, tv;
    };
    const Case cases[] = {{1, 0, 32, 4, 128, 128, true, true, GgmlType::F16, GgmlType::F16},
                          {7, 50, 16, 2, 64, 64, false, true, GgmlType::Q8_0, GgmlType::Q4_0},
                          {33, 3, 8, 4, 128, 64, true, false, GgmlType::F32, GgmlType::Q8_0},
                          {3, 90, 4, 4, 256, 256, true, true, GgmlType::Q4_0, GgmlType::F16},
                          {5, 9, 8, 2, 32, 32, false, false, GgmlType::F16, GgmlType::F32}};
    const float eps = 1e-6f;
    const int n_ctx = 128;
    uint32_t seed = 270;
    for (const Case& c : cases) {
        const std::string what = shape("norm_rope_qk_store", {{"n_tok", c.n_tok}, {"pos0", c.pos0}, {"head_dim", c.hd},
                                                              {"n_rot", c.n_rot}, {"neox", c.neox}, {"norms", c.norms},
                                                              {"tk", static_cast<double>(c.tk)}, {"tv", static_cast<double>(c.tv)}});
        const int64_t nk = static_cast<int64_t>(c.n_head_kv) * c.hd;
        const int64_t ldq = static_cast<int64_t>(c.n_head) * c.hd + 2, ldk = nk + 6, ldv = nk + 10;
        const auto q = random_floats(static_cast<size_t>(c.n_tok * ldq), seed++, 2.0f);
        const auto k = random_floats(static_cast<size_t>(c.n_tok * ldk), seed++, 2.0f);
        const auto v = random_floats(static_cast<size_t>(c.n_tok * ldv), seed++, 2.0f);
        auto dqw = to_device(random_floats(static_cast<size_t>(c.hd), seed++, 2.0f));
        auto dkw = to_device(random_floats(static_cast<size_t>(c.hd), seed++, 2.0f));
        auto df = to_device(inv_freqs(c.n_rot, 10000.0, 1.0, {}));
        auto dpos = to_device(std::vector<int32_t>{c.pos0});
        auto dv = to_device(v);
        const size_t rk = gguf::row_size(c.tk, nk), rv = gguf::row_size(c.tv, nk);
        std::vector<std::vector<uint8_t>> results;
        for (int fused = 0; fused < 2; ++fused) {
            auto dq = to_device(q);
            auto dk = to_device(k);
            DevMem kc(rk * n_ctx), vc(rv * n_ctx);
            kc.poison(0xAB);
            vc.poison(0xAB);
            const float* qn = c.norms ? dqw->get<float>() : nullptr;
            const float* kn = c.norms ? dkw->get<float>() : nullptr;
            if (fused) {
                rc::norm_rope_qk_store(dq->get<float>(), ldq, c.n_head, qn, dk->get<float>(), ldk, c.n_head_kv, kn,
                                       dv->get<float>(), ldv, c.n_tok, c.hd, eps, c.n_rot, c.neox, dpos->get<int32_t>(),
                                       df->get<double>(), c.tk, kc.get(), rk, c.tv, vc.get(), rv, nullptr);
            } else {
                rc::norm_rope_qk(dq->get<float>(), ldq, c.n_head, qn, dk->get<float>(), ldk, c.n_head_kv, kn, c.n_tok, c.hd,
                                 eps, c.n_rot, c.neox, dpos->get<int32_t>(), df->get<double>(), nullptr);
                rc::kv_store_kv(c.tk, dk->get<float>(), ldk, nk, kc.get(), rk, c.tv, dv->get<float>(), ldv, nk, vc.get(), rv,
                                c.n_tok, dpos->get<int32_t>(), nullptr);
            }
            cuda_test::sync();
            results.push_back(dq->download<uint8_t>());
            results.push_back(dk->download<uint8_t>());
            results.push_back(kc.download<uint8_t>());
            results.push_back(vc.download<uint8_t>());
        }
        const char* names[] = {"Q", "K", "K cache", "V cache"};
        for (int i = 0; i < 4; ++i) {
            EXPECT_TRUE(cuda_test::same_bytes(what + " " + names[i], results[4 + i].data(), results[i].data(),
                                              results[i].size()));
        }
    }
}

void route_reference(const float* logits, int E, int K, bool sigmoid, bool normalize, float scale, int32_t* ids,
                     float* weights) {
    std::vector<float> probs(logits, logits + E);
    if (sigmoid) {
        for (auto& p : probs) p = 1.0f / (1.0f + std::exp(-p));
    } else {
        runtime::cpu::softmax(probs.data(), E);
    }
    std::vector<int32_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) {
        return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
    });
    float sum = 0.0f;
    for (int j = 0; j < K; ++j) sum += probs[order[j]];
    const float norm = normalize ? 1.0f / std::max(sum, 6.103515625e-5f) : 1.0f;
    const bool scaled = scale != 0.0f && scale != 1.0f;
    for (int j = 0; j < K; ++j) {
        ids[j] = order[j];
        weights[j] = probs[order[j]] * norm * (scaled ? scale : 1.0f);
    }
}

TEST(CudaOps, RouteTopkMatchesCpu) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, E, K;
        bool sigmoid, normalize;
        float scale;
        bool ties;
    };
    const Case cases[] = {
        {1, 8, 2, false, true, 0, false},     {7, 60, 4, false, false, 1, false}, {512, 128, 8, false, true, 0, false},
        {3, 512, 8, false, true, 2.5f, false}, {5, 64, 6, true, true, 0, false},  {9, 256, 8, true, false, 2.5f, false},
        {4, 32, 32, false, true, 0, false},    {6, 128, 8, false, true, 0, true}, {6, 128, 8, true, true, 0, true},
        {2, 512, 1, false, false, 0, true},
    };
    uint32_t seed = 400;
    for (const Case& c : cases) {
        const std::string what = shape("route_topk", {{"n_tok", c.n_tok}, {"n_expert", c.E}, {"k", c.K}, {"sigmoid", c.sigmoid},
                                                      {"normalize", c.normalize}, {"scale*10", c.scale * 10}, {"ties", c.ties}});
        const int64_t ld = c.E + 5;
        auto logits = random_floats(static_cast<size_t>(c.n_tok * ld), seed++, 4.0f);
        if (c.ties) {
            for (auto& v : logits) v = std::round(v * 2.0f) / 2.0f;  // a few distinct values: many exact ties
        }
        std::vector<int32_t> ref_ids(static_cast<size_t>(c.n_tok * c.K));
        std::vector<float> ref_w(ref_ids.size());
        for (int t = 0; t < c.n_tok; ++t) {
            route_reference(logits.data() + t * ld, c.E, c.K, c.sigmoid, c.normalize, c.scale, ref_ids.data() + t * c.K,
                            ref_w.data() + t * c.K);
        }
        auto dl = to_device(logits);
        DevMem dids(ref_ids.size() * sizeof(int32_t)), dw(ref_w.size() * sizeof(float));
        dids.poison();
        dw.poison();
        rc::route_topk(dl->get<float>(), ld, c.n_tok, c.E, c.K, c.sigmoid, c.normalize, c.scale, dids.get<int32_t>(),
                       dw.get<float>(), nullptr);
        cuda_test::sync();
        const auto ids = dids.download<int32_t>();
        const auto w = dw.download<float>();
        size_t n_bad = 0, first = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] != ref_ids[i] && n_bad++ == 0) first = i;
        }
        EXPECT_EQ(n_bad, 0u) << what << ": " << n_bad << " of " << ids.size() << " expert ids differ; first at token "
                             << first / c.K << " choice " << first % c.K << " (got " << ids[first] << ", want "
                             << ref_ids[first] << ")";
        EXPECT_TRUE(close(what + " weights", w.data(), c.K, ref_w.data(), c.K, c.n_tok, c.K, 1e-5, 1e-7));
    }
}

// The fused router: its logits against double-precision dots, its choice bit for bit what route_topk makes
// of those logits; run twice per case (the counter must be left zero for the next launch).
TEST(CudaOps, RouterTopkF32IsTheMatVecThenRouteTopk) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, E, K;
        int64_t n_in, ldx;
        bool sigmoid, normalize;
        float scale;
    };
    const Case cases[] = {{1, 128, 8, 2048, 2048, false, true, 0.f},   // Qwen3-30B-A3B
                          {8, 128, 8, 2048, 2052, false, true, 0.f},   // the most decode tokens
                          {3, 60, 4, 2047, 2049, false, false, 2.5f},  // unaligned rows, a ragged last block
                          {2, 512, 32, 256, 256, true, true, 0.f},     // the limits, sigmoid gating
                          {5, 9, 1, 64, 70, false, true, 1.f}};
    uint32_t seed = 4400;
    DevMem counter(sizeof(int32_t));
    cuda_test::ok(cudaMemset(counter.get(), 0, sizeof(int32_t)), "cudaMemset");
    for (const Case& c : cases) {
        const std::string what = shape("router_topk_f32", {{"n_tok", c.n_tok}, {"n_expert", c.E}, {"k", c.K},
                                                           {"n_in", c.n_in}, {"sigmoid", c.sigmoid}});
        const int64_t ld = c.E + 3;
        const auto w = random_floats(static_cast<size_t>(c.E * c.n_in), seed++, 0.05f);
        const auto x = random_floats(static_cast<size_t>(c.n_tok * c.ldx), seed++, 1.0f);
        std::vector<float> ref(static_cast<size_t>(c.n_tok * c.E));
        for (int t = 0; t < c.n_tok; ++t) {
            for (int e = 0; e < c.E; ++e) {
                double d = 0;
                for (int64_t i = 0; i < c.n_in; ++i) d += static_cast<double>(w[e * c.n_in + i]) * x[t * c.ldx + i];
                ref[static_cast<size_t>(t * c.E + e)] = static_cast<float>(d);
            }
        }
        auto dwt = to_device(w);
        auto dx = to_device(x);
        DevMem dl(static_cast<size_t>(c.n_tok * ld) * sizeof(float)), dids(sizeof(int32_t) * c.n_tok * c.K),
            dw(sizeof(float) * c.n_tok * c.K), rids(sizeof(int32_t) * c.n_tok * c.K), rw(sizeof(float) * c.n_tok * c.K);
        for (int round = 0; round < 2; ++round) {
            dl.poison();
            dids.poison();
            dw.poison();
            rc::router_topk_f32(dwt->get<float>(), c.n_in, dx->get<float>(), c.ldx, c.n_tok, c.E, c.K, c.sigmoid,
                                c.normalize, c.scale, dl.get<float>(), ld, counter.get<int32_t>(), dids.get<int32_t>(),
                                dw.get<float>(), nullptr);
            rc::route_topk(dl.get<float>(), ld, c.n_tok, c.E, c.K, c.sigmoid, c.normalize, c.scale, rids.get<int32_t>(),
                           rw.get<float>(), nullptr);
            cuda_test::sync();
            const auto logits = dl.download<float>();
            EXPECT_TRUE(close(what + " logits", logits.data(), ld, ref.data(), c.E, c.n_tok, c.E, 1e-5, 1e-5));
            EXPECT_TRUE(padding_untouched(what + " logits", logits, ld, c.E, c.n_tok));
            EXPECT_EQ(dids.download<int32_t>(), rids.download<int32_t>()) << what << " round " << round;
            const auto got_w = dw.download<float>(), want_w = rw.download<float>();
            EXPECT_TRUE(cuda_test::same_bytes(what + " weights", got_w.data(), want_w.data(), got_w.size() * sizeof(float)));
            EXPECT_EQ(counter.download<int32_t>()[0], 0) << what << ": counter not reset";
        }
    }
    EXPECT_THROW(rc::router_topk_f32(nullptr, 64, nullptr, 64, 9, 8, 2, false, true, 0, nullptr, 8, nullptr, nullptr,
                                     nullptr, nullptr),
                 runtime::Error);
}

TEST(CudaOps, SwigluMatchesCpu) {
    REQUIRE_GPU();
    uint32_t seed = 500;
    for (int64_t n : {int64_t{1}, int64_t{1000}, (int64_t{1} << 20) + 3}) {
        for (bool alias : {false, true}) {
            const std::string what = shape("swiglu", {{"n", n}, {"out_is_gate", alias}});
            auto gate = random_floats(static_cast<size_t>(n), seed++, 6.0f);
            if (n > 10) {
                gate[3] = 100.0f;  // beyond the CPU exponential's clamp on both sides
                gate[4] = -100.0f;
            }
            const auto up = random_floats(static_cast<size_t>(n), seed++, 2.0f);
            std::vector<float> ref(static_cast<size_t>(n));
            runtime::cpu::swiglu(gate.data(), up.data(), ref.data(), n);
            auto dg = to_device(gate);
            auto du = to_device(up);
            DevMem dout(static_cast<size_t>(n) * sizeof(float));
            dout.poison();
            float* out = alias ? dg->get<float>() : dout.get<float>();
            rc::swiglu(dg->get<float>(), du->get<float>(), out, n, nullptr);
            cuda_test::sync();
            const auto got = alias ? dg->download<float>() : dout.download<float>();
            EXPECT_TRUE(close(what, got.data(), n, ref.data(), n, 1, n, 2e-6, 1e-30));
        }
    }
}

TEST(CudaOps, SwigluRowsEqualsContiguous) {
    REQUIRE_GPU();
    const int64_t n = 1000, ldg = n + 3, ldu = n + 5, ldo = n + 2;
    for (int rows : {1, 7, 512}) {
        const std::string what = shape("swiglu_rows", {{"rows", rows}});
        const auto gate = random_floats(static_cast<size_t>(rows * ldg), 550 + rows, 6.0f);
        const auto up = random_floats(static_cast<size_t>(rows * ldu), 560 + rows, 2.0f);
        std::vector<float> ref(static_cast<size_t>(rows * n));
        for (int r = 0; r < rows; ++r) runtime::cpu::swiglu(gate.data() + r * ldg, up.data() + r * ldu, ref.data() + r * n, n);
        auto dg = to_device(gate);
        auto du = to_device(up);
        DevMem dout(static_cast<size_t>(rows * ldo) * sizeof(float));
        dout.poison();
        rc::swiglu_rows(dg->get<float>(), ldg, du->get<float>(), ldu, dout.get<float>(), ldo, n, rows, nullptr);
        cuda_test::sync();
        const auto got = dout.download<float>();
        EXPECT_TRUE(close(what, got.data(), ldo, ref.data(), n, rows, n, 2e-6, 1e-30));
        EXPECT_TRUE(padding_untouched(what, got, ldo, n, rows));
    }
}

TEST(CudaOps, AddRowsAndBiasAreExact) {
    REQUIRE_GPU();
    const int64_t n = 1000, ldx = n + 2, ldy = n + 7;
    for (int rows : {1, 3, 512}) {
        const auto x = random_floats(static_cast<size_t>(rows * ldx), 600 + rows);
        const auto y = random_floats(static_cast<size_t>(rows * ldy), 700 + rows);
        const auto b = random_floats(static_cast<size_t>(n), 800 + rows);
        std::vector<float> ref_add = x, ref_bias = x;
        for (int r = 0; r < rows; ++r) {
            for (int64_t i = 0; i < n; ++i) {
                ref_add[static_cast<size_t>(r * ldx + i)] += y[static_cast<size_t>(r * ldy + i)];
                ref_bias[static_cast<size_t>(r * ldx + i)] += b[static_cast<size_t>(i)];
            }
        }
        auto dx = to_device(x);
        auto dy = to_device(y);
        rc::add_rows(dx->get<float>(), ldx, dy->get<float>(), ldy, n, rows, nullptr);
        cuda_test::sync();
        auto got = dx->download<float>();
        EXPECT_TRUE(close(shape("add_rows", {{"rows", rows}}), got.data(), ldx, ref_add.data(), ldx, rows, ldx, 0, 0));
        auto dx2 = to_device(x);
        auto db = to_device(b);
        rc::add_bias(dx2->get<float>(), ldx, db->get<float>(), n, rows, nullptr);
        cuda_test::sync();
        got = dx2->download<float>();
        EXPECT_TRUE(close(shape("add_bias", {{"rows", rows}}), got.data(), ldx, ref_bias.data(), ldx, rows, ldx, 0, 0));
    }
}

TEST(CudaOps, MoeWeightedSumMatchesCpu) {
    REQUIRE_GPU();
    for (int n_tok : {1, 7, 512}) {
        for (int k : {1, 8}) {
            const int64_t n = 1000, ldx = n + 1, ld_down = n + 3;
            const auto x = random_floats(static_cast<size_t>(n_tok * ldx), 900 + n_tok * k);
            const auto down = random_floats(static_cast<size_t>(n_tok * k * ld_down), 1000 + n_tok * k, 3.0f);
            const auto w = random_floats(static_cast<size_t>(n_tok * k), 1100 + n_tok * k);
            std::vector<float> ref = x;
            for (int t = 0; t < n_tok; ++t) {
                for (int j = 0; j < k; ++j) {
                    const size_t slot = static_cast<size_t>(t * k + j);
                    for (int64_t i = 0; i < n; ++i) ref[static_cast<size_t>(t * ldx + i)] += w[slot] * down[slot * ld_down + i];
                }
            }
            auto dx = to_device(x);
            auto dd = to_device(down);
            auto dw = to_device(w);
            rc::moe_weighted_sum(dx->get<float>(), ldx, dd->get<float>(), ld_down, dw->get<float>(), n_tok, k, n, nullptr);
            cuda_test::sync();
            const auto got = dx->download<float>();
            // the same operations in the same order: equal unless the host compiler fused a multiply-add
            EXPECT_TRUE(close(shape("moe_weighted_sum", {{"n_tok", n_tok}, {"k", k}}), got.data(), ldx, ref.data(), ldx,
                              n_tok, ldx, 1e-6, 1e-7));
        }
    }
}

TEST(CudaOps, GetRowsMatchesDequantize) {
    REQUIRE_GPU();
    const int64_t n = 512, ldo = n + 4;
    const int n_rows = 40;
    const std::vector<int32_t> ids = {0, 39, 5, 5, 17, 1, 38, 20, 0};
    const int n_tok = static_cast<int>(ids.size());
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                          GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        const std::string what = "get_rows_f32 " + std::string(gguf::type_name(type));
        ASSERT_TRUE(rc::get_rows_supported(type)) << what;
        const auto data = random_floats(static_cast<size_t>(n_rows * n), 1200 + static_cast<uint32_t>(type), 2.0f);
        const size_t row_bytes = gguf::row_size(type, n);
        std::vector<uint8_t> table(row_bytes * n_rows);
        quant::quantize_rows(type, data.data(), table.data(), n_rows, n);
        std::vector<float> ref(static_cast<size_t>(n_tok * n));
        for (int t = 0; t < n_tok; ++t) {
            quant::dequantize_row(type, table.data() + static_cast<size_t>(ids[static_cast<size_t>(t)]) * row_bytes,
                                  ref.data() + t * n, n);
        }
        auto dt = to_device(table);
        auto di = to_device(ids);
        DevMem dout(static_cast<size_t>(n_tok * ldo) * sizeof(float));
        dout.poison();
        rc::get_rows_f32(type, dt->get(), row_bytes, di->get<int32_t>(), n_tok, n, dout.get<float>(), ldo, nullptr);
        cuda_test::sync();
        const auto got = dout.download<float>();
        EXPECT_TRUE(close(what, got.data(), ldo, ref.data(), n, n_tok, n, 0, 0));
        EXPECT_TRUE(padding_untouched(what, got, ldo, n, n_tok));
    }
    EXPECT_FALSE(rc::get_rows_supported(GgmlType::Q3_K));
    EXPECT_THROW(rc::get_rows_f32(GgmlType::Q3_K, nullptr, 110, nullptr, 1, 256, nullptr, 256, nullptr), runtime::Error);
}

TEST(CudaOps, UnsupportedShapesThrow) {
    REQUIRE_GPU();
    EXPECT_THROW(rc::route_topk(nullptr, 600, 1, 600, 8, false, true, 0, nullptr, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::route_topk(nullptr, 64, 1, 64, 33, false, true, 0, nullptr, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::kv_store(GgmlType::Q4_K, nullptr, 256, 1, 256, nullptr, 144, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::kv_store(GgmlType::Q8_0, nullptr, 48, 1, 48, nullptr, 51, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::rope(nullptr, 64, 1, 1, 64, 65, false, nullptr, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::attention(nullptr, 0, nullptr, GgmlType::Q4_K, 0, nullptr, GgmlType::F16, 0, 1, 8, 4, 64, 64, 1.0f,
                               nullptr, 16, nullptr, 0, nullptr, nullptr),
                 runtime::Error);
    EXPECT_THROW(rc::attention(nullptr, 0, nullptr, GgmlType::F16, 0, nullptr, GgmlType::F16, 0, 1, 8, 3, 64, 64, 1.0f,
                               nullptr, 16, nullptr, 0, nullptr, nullptr),
                 runtime::Error);
    EXPECT_THROW(rc::attention(nullptr, 0, nullptr, GgmlType::F16, 0, nullptr, GgmlType::F16, 0, 1, 8, 4, 96, 96, 1.0f,
                               nullptr, 16, nullptr, 0, nullptr, nullptr),
                 runtime::Error);
}

}  // namespace
