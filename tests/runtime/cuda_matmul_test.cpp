// The CUDA matrix kernels (runtime/src/cuda/matmul_kernels.h) against libquant on the CPU (label gpu):
// weights quantized by libquant, references from quant::dequantize_row in double precision. Every
// check collects all its mismatches (type, shape, error, first bad index) and reports them together,
// so one run on the device shows everything that is wrong. Without a device every case skips.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/matmul_kernels.h"
#include "cuda/op_kernels.h"
#include "cuda/pdl.h"
#include "gguf/types.h"
#include "quant/float16.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace {

using gguf::GgmlType;
namespace rc = runtime::cuda;

void cuda_ok(cudaError_t e, const std::string& what) {
    if (e != cudaSuccess) throw std::runtime_error("CUDA error in " + what + ": " + cudaGetErrorString(e));
}

// Waits for the device after each kernel so that a fault names the call that caused it.
void sync(const std::string& what) {
    cuda_ok(cudaGetLastError(), what + " (launch)");
    cuda_ok(cudaDeviceSynchronize(), what);
}

std::string device_missing() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
    if (n == 0) return "no CUDA device";
    return {};
}

#define REQUIRE_GPU()                                 \
    do {                                              \
        const std::string why = device_missing();     \
        if (!why.empty()) GTEST_SKIP() << why;        \
    } while (0)

class DeviceBuffer {
public:
    explicit DeviceBuffer(size_t bytes) : bytes_(bytes) { cuda_ok(cudaMalloc(&p_, std::max<size_t>(bytes, 16)), "cudaMalloc"); }
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { cudaFree(p_); }
    template <class T>
    T* as() const { return static_cast<T*>(p_); }
    void upload(const void* src, size_t n) { cuda_ok(cudaMemcpy(p_, src, n, cudaMemcpyHostToDevice), "upload"); }
    template <class T>
    std::vector<T> download(size_t count) const {
        std::vector<T> out(count);
        cuda_ok(cudaMemcpy(out.data(), p_, count * sizeof(T), cudaMemcpyDeviceToHost), "download");
        return out;
    }
    void fill(int byte) { cuda_ok(cudaMemset(p_, byte, bytes_), "cudaMemset"); }

private:
    void* p_ = nullptr;
    size_t bytes_;
};

template <class T>
DeviceBuffer to_device(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    b.upload(v.data(), v.size() * sizeof(T));
    return b;
}

std::string name_of(GgmlType t) { return std::string(gguf::type_traits(t).name); }
int64_t block_elems(GgmlType t) { return gguf::type_traits(t).block_size; }
size_t row_bytes_of(GgmlType t, int64_t n) { return static_cast<size_t>(gguf::row_size(t, static_cast<uint64_t>(n))); }

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// n_rows x n quantized with libquant (a random importance matrix where the type demands one).
std::vector<uint8_t> quantize_weights(GgmlType type, const std::vector<float>& w, int64_t n_rows, int64_t n, uint32_t seed) {
    std::vector<uint8_t> q(row_bytes_of(type, n) * n_rows);
    std::vector<float> imatrix;
    if (quant::requires_imatrix(type)) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> dist(0.1f, 2.f);
        imatrix.resize(n);
        for (auto& x : imatrix) x = dist(rng);
    }
    quant::quantize_rows(type, w.data(), q.data(), n_rows, n, imatrix.empty() ? nullptr : imatrix.data());
    return q;
}

std::vector<float> dequantize_cpu(GgmlType type, const std::vector<uint8_t>& q, int64_t n_rows, int64_t n, size_t row_bytes) {
    std::vector<float> out(static_cast<size_t>(n_rows * n));
    for (int64_t r = 0; r < n_rows; ++r) quant::dequantize_row(type, q.data() + r * row_bytes, out.data() + r * n, n);
    return out;
}

// q8_1 rows back to floats (d * q), exactly as the kernels see them.
std::vector<float> decode_q8_1(const std::vector<rc::BlockQ8_1>& blocks, int64_t n_rows, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n_rows * n));
    for (int64_t i = 0; i < n_rows * n / 32; ++i) {
        const float d = quant::f16_to_f32(blocks[i].d);
        for (int j = 0; j < 32; ++j) out[i * 32 + j] = d * blocks[i].qs[j];
    }
    return out;
}

// Collects every failure of one check, prints them all at the end (at most `shown` in full).
class Failures {
public:
    void add(const std::string& s) {
        if (list_.size() < 60) list_.push_back(s);
        ++count_;
    }
    void report(const std::string& what) const {
        if (count_ == 0) return;
        std::ostringstream os;
        os << what << ": " << count_ << " failing case(s)";
        for (const auto& s : list_) os << "\n  " << s;
        if (count_ > list_.size()) os << "\n  ... " << (count_ - list_.size()) << " more";
        ADD_FAILURE() << os.str();
    }

private:
    std::vector<std::string> list_;
    size_t count_ = 0;
};

// Compares y (rows ldy apart) with reference dots of weight rows w (n_out x n) and activation rows a:
// |y - ref| <= rel * sum |w a| + 1e-6. `row_of(t)` picks the activation row and `w_of(t)` the weight
// matrix offset (in rows) of output row t. Records the worst ratio of error to norm.
struct DotCheck {
    double worst = 0;  // max |err| / norm over all outputs
    template <class RowOf, class MatOf>
    void run(Failures& f, const std::string& label, const std::vector<float>& w, const std::vector<float>& a, int64_t n,
             int64_t n_out, int n_rows_out, const std::vector<float>& y, int64_t ldy, double rel, RowOf row_of, MatOf mat_of) {
        int bad = 0;
        std::string first;
        double max_err = 0;
        for (int t = 0; t < n_rows_out; ++t) {
            const float* at = a.data() + static_cast<int64_t>(row_of(t)) * n;
            for (int64_t r = 0; r < n_out; ++r) {
                const float* wr = w.data() + (static_cast<int64_t>(mat_of(t)) * n_out + r) * n;
                double ref = 0, norm = 0;
                for (int64_t i = 0; i < n; ++i) {
                    ref += static_cast<double>(wr[i]) * at[i];
                    norm += std::fabs(static_cast<double>(wr[i]) * at[i]);
                }
                const double got = y[t * ldy + r];
                const double err = std::fabs(got - ref);
                worst = std::max(worst, norm > 0 ? err / norm : err);
                max_err = std::max(max_err, err);
                if (!(err <= rel * norm + 1e-6)) {  // also catches NaN
                    if (bad++ == 0) {
                        std::ostringstream os;
                        os << "first bad [t=" << t << ", r=" << r << "] got " << got << " want " << ref << " (norm " << norm << ")";
                        first = os.str();
                    }
                }
            }
        }
        if (bad) {
            std::ostringstream os;
            os << label << ": " << bad << " of " << n_rows_out * n_out << " outputs off, max |err| " << max_err << ", " << first;
            f.add(os.str());
        }
    }
};

const std::vector<GgmlType> kMmvqTypes = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                          GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                                          GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4};

// Formats whose minimum term uses the activation block's half-precision sum s (2^-11 relative).
double tolerance_for(GgmlType t) {
    switch (t) {
        case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K: return 1e-3;
        default: return 5e-5;  // float rounding of the scales and the sums only
    }
}

std::string shape(GgmlType t, int64_t n_in, int64_t n_out, int n_tok) {
    std::ostringstream os;
    os << name_of(t) << " n_in=" << n_in << " n_out=" << n_out << " n_tok=" << n_tok;
    return os.str();
}

// Activations on the device: float rows and their q8_1 form, plus the decoded q8_1 values on the host.
struct Activations {
    std::vector<float> x;
    std::vector<float> decoded;
    DeviceBuffer xq;     // q8_1 blocks
    DeviceBuffer quads;  // the same in the quad layout of the tensor-core kernel
    Activations(int64_t n, int rows, uint32_t seed)
        : x(random_floats(static_cast<size_t>(n * rows), seed)), xq(rc::q8_1_row_bytes(n) * rows),
          quads(rc::q8_1_quad_row_bytes(n) * rows) {
        DeviceBuffer dx = to_device(x);
        rc::quantize_rows_q8_1(dx.as<float>(), n, n, rows, xq.as<void>(), nullptr);
        rc::quantize_rows_q8_1_quads(dx.as<float>(), n, n, rows, quads.as<void>(), nullptr);
        sync("quantize_rows_q8_1");
        decoded = decode_q8_1(xq.download<rc::BlockQ8_1>(static_cast<size_t>(n / 32 * rows)), rows, n);
    }
};

// Turns the shared-memory staging of weight rows on for one test (it is off by default), back off after.
struct StagingOn {
    StagingOn() { rc::set_weight_staging(true); }
    ~StagingOn() { rc::set_weight_staging(false); }
    StagingOn(const StagingOn&) = delete;
    StagingOn& operator=(const StagingOn&) = delete;
};

// --- q8_1 ---------------------------------------------------------------------------------------------

TEST(CudaMatmul, QuantizeQ8_1MatchesTheCpuFormula) {
    REQUIRE_GPU();
    // 5 rows: a block a warp; 40: four a warp (16-byte loads where ld keeps rows aligned, n + 97 does not)
    for (const auto& [rows, pad] : {std::pair{5, 96}, std::pair{40, 96}, std::pair{40, 97}}) {
        SCOPED_TRACE("rows " + std::to_string(rows) + " ld n + " + std::to_string(pad));
        const int64_t n = 2048, ld = n + pad;
        std::vector<float> x = random_floats(static_cast<size_t>(ld * rows), 7, 3.f);
        for (int j = 0; j < 32; ++j) x[32 + j] = 0.f;  // an all-zero block: d = 0, q = 0
        for (int j = 0; j < 32; ++j) x[96 + j] = 1e-30f * (j - 16);  // a tiny block: d underflows to 0 in half
        DeviceBuffer dx = to_device(x);
        DeviceBuffer xq(rc::q8_1_row_bytes(n) * rows);
        rc::quantize_rows_q8_1(dx.as<float>(), ld, n, rows, xq.as<void>(), nullptr);
        sync("quantize_rows_q8_1");
        const auto got = xq.download<rc::BlockQ8_1>(static_cast<size_t>(n / 32 * rows));
        EXPECT_EQ(rc::q8_1_row_bytes(n), static_cast<size_t>(n / 32 * 36));
        Failures f;
        for (int r = 0; r < rows; ++r) {
            for (int64_t b = 0; b < n / 32; ++b) {
                const float* xb = x.data() + r * ld + b * 32;
                float amax = 0;
                for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
                const float d = amax / 127.f;
                int sum = 0;
                int8_t q[32];
                for (int j = 0; j < 32; ++j) {
                    q[j] = static_cast<int8_t>(d == 0.f ? 0 : static_cast<int>(std::nearbyint(xb[j] / d)));
                    sum += q[j];
                }
                const rc::BlockQ8_1& g = got[r * (n / 32) + b];
                const bool ok = g.d == quant::f32_to_f16(d) && g.s == quant::f32_to_f16(d * static_cast<float>(sum)) &&
                                std::memcmp(g.qs, q, 32) == 0;
                if (!ok) {
                    std::ostringstream os;
                    os << "row " << r << " block " << b << ": d " << g.d << " want " << quant::f32_to_f16(d) << ", s " << g.s
                       << " want " << quant::f32_to_f16(d * static_cast<float>(sum));
                    for (int j = 0; j < 32; ++j) {
                        if (g.qs[j] != q[j]) {
                            os << ", first q mismatch at " << j << ": " << int(g.qs[j]) << " want " << int(q[j]);
                            break;
                        }
                    }
                    f.add(os.str());
                }
            }
        }
        f.report("quantize_rows_q8_1");
    }
}

// The experts' fused SwiGLU + quantization: bit for bit the two separate kernels (gate values past the
// exponent clamp included).
// The quad layout holds the same blocks as quantize_rows_q8_1 writes, four to a group ((d, s) words, then
// the 4 x 32 values), rows of whole groups with zero blocks past n / 32; also with SwiGLU. n = 288: nine
// blocks, three of them padding in the last group.
TEST(CudaMatmul, QuadLayoutHoldsTheSameBlocks) {
    REQUIRE_GPU();
    // 3 rows: a block a warp; 20: four a warp, also with rows that are not 16-byte aligned (ld n + 33)
    for (const auto& [n, rows, pad] : {std::tuple{int64_t{2048}, 3, 32}, std::tuple{int64_t{288}, 3, 32},
                                      std::tuple{int64_t{2048}, 20, 32}, std::tuple{int64_t{288}, 20, 33}}) {
        const int64_t ld = n + pad, nb = n / 32, n_quads = (nb + 3) / 4;
        const auto x = random_floats(static_cast<size_t>(ld * rows), 11, 2.f), u = random_floats(static_cast<size_t>(n * rows), 12);
        DeviceBuffer dx = to_device(x), du = to_device(u), blocks(rc::q8_1_row_bytes(n) * rows),
            quads(rc::q8_1_quad_row_bytes(n) * rows);
        EXPECT_EQ(rc::q8_1_quad_row_bytes(n), static_cast<size_t>(n_quads * 144));
        for (bool swiglu : {false, true}) {
            quads.fill(0x5a);
            if (swiglu) {
                rc::swiglu_quantize_rows_q8_1(dx.as<float>(), du.as<float>(), n, rows, blocks.as<void>(), nullptr);
                rc::swiglu_quantize_rows_q8_1_quads(dx.as<float>(), du.as<float>(), n, rows, quads.as<void>(), nullptr);
            } else {
                rc::quantize_rows_q8_1(dx.as<float>(), ld, n, rows, blocks.as<void>(), nullptr);
                rc::quantize_rows_q8_1_quads(dx.as<float>(), ld, n, rows, quads.as<void>(), nullptr);
            }
            sync("quantize_rows_q8_1_quads");
            const auto want = blocks.download<rc::BlockQ8_1>(static_cast<size_t>(nb * rows));
            const auto got = quads.download<rc::BlockQ8_1Quad>(static_cast<size_t>(n_quads * rows));
            for (int r = 0; r < rows; ++r) {
                for (int64_t b = 0; b < n_quads * 4; ++b) {
                    const rc::BlockQ8_1Quad& g = got[r * n_quads + b / 4];
                    rc::BlockQ8_1 zero{};
                    const rc::BlockQ8_1& w = b < nb ? want[r * nb + b] : zero;
                    uint32_t ds = 0;
                    std::memcpy(&ds, &w, 4);
                    EXPECT_EQ(g.ds[b % 4], ds) << "n " << n << " rows " << rows << " swiglu " << swiglu << " row " << r
                                               << " block " << b;
                    EXPECT_EQ(std::memcmp(g.qs + (b % 4) * 32, w.qs, 32), 0)
                        << "n " << n << " rows " << rows << " swiglu " << swiglu << " row " << r << " block " << b;
                }
            }
        }
    }
}

TEST(CudaMatmul, SwigluQuantizeEqualsSwigluThenQuantize) {
    REQUIRE_GPU();
    const int64_t n = 768;
    for (int rows : {9, 24}) {  // a block a warp, four a warp
        std::vector<float> gate = random_floats(static_cast<size_t>(n * rows), 11, 4.f);
        const std::vector<float> up = random_floats(static_cast<size_t>(n * rows), 12, 2.f);
        gate[5] = 100.f;
        gate[6] = -100.f;
        for (int j = 0; j < 32; ++j) gate[64 + j] = 0.f;  // an all-zero block of the product
        DeviceBuffer dg = to_device(gate), du = to_device(up), dh(sizeof(float) * n * rows);
        DeviceBuffer want(rc::q8_1_row_bytes(n) * rows), got(rc::q8_1_row_bytes(n) * rows);
        rc::swiglu(dg.as<float>(), du.as<float>(), dh.as<float>(), n * rows, nullptr);
        rc::quantize_rows_q8_1(dh.as<float>(), n, n, rows, want.as<void>(), nullptr);
        rc::swiglu_quantize_rows_q8_1(dg.as<float>(), du.as<float>(), n, rows, got.as<void>(), nullptr);
        sync("swiglu_quantize_rows_q8_1");
        const size_t bytes = rc::q8_1_row_bytes(n) * rows;
        EXPECT_EQ(got.download<uint8_t>(bytes), want.download<uint8_t>(bytes));
        EXPECT_THROW(rc::swiglu_quantize_rows_q8_1(nullptr, nullptr, 40, 1, nullptr, nullptr), runtime::Error);
    }
}

// --- mmvq -------------------------------------------------------------------------------------------------

// With the weight rows staged through shared memory where the tiles allow (the direct path is checked
// against this one, bit for bit, by MmvqMultiEqualsOneMmvqPerMatrix).
TEST(CudaMatmul, MmvqMatchesTheCpuReferenceForEveryTypeShapeAndTokenCount) {
    REQUIRE_GPU();
    const StagingOn staging;
    Failures f, loose;
    const std::vector<int64_t> n_ins = {256, 2048, 768, 4096};
    const std::vector<int64_t> n_outs = {1, 67, 259};
    uint32_t seed = 100;
    for (GgmlType type : kMmvqTypes) {
        ASSERT_TRUE(rc::mmvq_supported(type)) << name_of(type);
        DotCheck check;
        for (int64_t n_in : n_ins) {
            if (n_in % block_elems(type) != 0) continue;
            Activations act(n_in, 8, ++seed);
            for (int64_t n_out : n_outs) {
                const size_t rb = row_bytes_of(type, n_in);
                const auto wf = random_floats(static_cast<size_t>(n_out * n_in), ++seed);
                const auto wq = quantize_weights(type, wf, n_out, n_in, seed);
                const auto wd = dequantize_cpu(type, wq, n_out, n_in, rb);
                DeviceBuffer dw = to_device(wq);
                const int64_t ldy = n_out + 5;
                DeviceBuffer dy(sizeof(float) * ldy * 8);
                for (int n_tok = 1; n_tok <= 8; ++n_tok) {
                    dy.fill(0xff);  // NaN: unwritten outputs fail
                    const std::string label = shape(type, n_in, n_out, n_tok);
                    rc::mmvq(type, dw.as<void>(), rb, n_in, n_out, act.xq.as<void>(), n_tok, dy.as<float>(), ldy, nullptr);
                    sync("mmvq " + label);
                    const auto y = dy.download<float>(static_cast<size_t>(ldy * n_tok));
                    check.run(f, label, wd, act.decoded, n_in, n_out, n_tok, y, ldy, tolerance_for(type),
                              [](int t) { return t; }, [](int) { return 0; });
                    // Against the unquantized activations: catches a layout misread shared by kernel and test.
                    DotCheck vs_float;
                    vs_float.run(loose, label + " (vs f32 activations)", wd, act.x, n_in, n_out, n_tok, y, ldy, 3e-2,
                                 [](int t) { return t; }, [](int) { return 0; });
                }
            }
        }
        std::printf("mmvq %-7s worst |err| / sum|w*a| = %.3g (tolerance %.1g)\n", name_of(type).c_str(), check.worst,
                    tolerance_for(type));
    }
    f.report("mmvq");
    loose.report("mmvq vs f32 activations");
}

// Several matrices in one launch give bit for bit what one mmvq launch per matrix gives (mmvq itself is
// checked against the reference above); an empty matrix between them takes no blocks. The multi launch
// runs with the shared-memory staging of weight rows turned off, the single launches with it on (where
// the tiles allow): both paths agree.
TEST(CudaMatmul, MmvqMultiEqualsOneMmvqPerMatrix) {
    REQUIRE_GPU();
    const StagingOn staging;
    Failures f;
    uint32_t seed = 3100;
    const std::vector<int64_t> n_outs = {259, 0, 1, 67};
    for (GgmlType type : kMmvqTypes) {
        for (int64_t n_in : {int64_t{256}, int64_t{2048}}) {
            if (n_in % block_elems(type) != 0) continue;
            Activations act(n_in, 8, ++seed);
            const size_t rb = row_bytes_of(type, n_in);
            std::vector<DeviceBuffer> w, y, y_ref;
            for (int64_t n_out : n_outs) {
                const auto wf = random_floats(static_cast<size_t>(std::max<int64_t>(n_out, 1) * n_in), ++seed);
                w.push_back(to_device(quantize_weights(type, wf, std::max<int64_t>(n_out, 1), n_in, seed)));
                y.emplace_back(sizeof(float) * (n_out + 3) * 8);
                y_ref.emplace_back(sizeof(float) * (n_out + 3) * 8);
            }
            for (int n_tok : {1, 3, 8}) {
                std::vector<rc::MmvqMat> mats;
                for (size_t m = 0; m < n_outs.size(); ++m) {
                    y[m].fill(0xff);
                    y_ref[m].fill(0xff);
                    mats.push_back({w[m].as<void>(), rb, n_outs[m], y[m].as<float>(), n_outs[m] + 3});
                    rc::mmvq(type, w[m].as<void>(), rb, n_in, n_outs[m], act.xq.as<void>(), n_tok, y_ref[m].as<float>(),
                             n_outs[m] + 3, nullptr);
                }
                rc::set_weight_staging(false);
                rc::mmvq_multi(type, mats.data(), static_cast<int>(mats.size()), n_in, act.xq.as<void>(), n_tok, nullptr);
                rc::set_weight_staging(true);
                const std::string label = shape(type, n_in, 0, n_tok);
                sync("mmvq_multi " + label);
                for (size_t m = 0; m < n_outs.size(); ++m) {
                    const size_t count = static_cast<size_t>((n_outs[m] + 3) * 8);
                    const auto got = y[m].download<uint32_t>(count), want = y_ref[m].download<uint32_t>(count);
                    if (got != want) f.add(label + ": matrix " + std::to_string(m) + " differs from its own mmvq launch");
                }
            }
        }
    }
    f.report("mmvq_multi");
    DeviceBuffer dummy(64);
    const rc::MmvqMat five[5] = {};
    EXPECT_THROW(rc::mmvq_multi(GgmlType::Q8_0, five, 5, 256, dummy.as<void>(), 1, nullptr), runtime::Error);
}

// Matrices of several experts, one after another mat_stride bytes apart (with padding between them).
struct Experts {
    int64_t n_in, n_out;
    int n_experts;
    size_t row_bytes, mat_stride;
    std::vector<float> dequantized;  // n_experts * n_out rows
    std::vector<uint8_t> bytes;
    // pad: bytes between matrices; aligned_pad() keeps each matrix 16-byte aligned
    Experts(GgmlType type, int64_t n_in_, int64_t n_out_, int n_experts_, uint32_t seed, size_t pad = 64)
        : n_in(n_in_), n_out(n_out_), n_experts(n_experts_), row_bytes(row_bytes_of(type, n_in_)),
          mat_stride(row_bytes * n_out_ + pad) {
        bytes.assign(mat_stride * n_experts, 0);
        for (int e = 0; e < n_experts; ++e) {
            const auto wf = random_floats(static_cast<size_t>(n_out * n_in), seed + e);
            const auto wq = quantize_weights(type, wf, n_out, n_in, seed + e);
            std::memcpy(bytes.data() + e * mat_stride, wq.data(), wq.size());
            const auto wd = dequantize_cpu(type, wq, n_out, n_in, row_bytes);
            dequantized.insert(dequantized.end(), wd.begin(), wd.end());
        }
    }
    static size_t aligned_pad(GgmlType type, int64_t n_in, int64_t n_out) {
        return 64 + (16 - row_bytes_of(type, n_in) * n_out % 16) % 16;
    }
};

TEST(CudaMatmul, MmvqIdsPicksEachSlotsExpertAndActivationRow) {
    REQUIRE_GPU();
    Failures f;
    const int n_experts = 6;
    // gate/up form: 3 tokens x top-3 sharing their token's row; expert 4 repeated, 2 and 5 unused
    const std::vector<int32_t> ids_grouped = {4, 1, 0, 4, 3, 1, 0, 4, 3};
    // down form: one activation row per slot; a negative id gives zeros
    const std::vector<int32_t> ids_single = {3, 3, 0, 1, -1};
    DeviceBuffer d_grouped = to_device(ids_grouped), d_single = to_device(ids_single);
    uint32_t seed = 500;
    for (GgmlType type : kMmvqTypes) {
        DotCheck check;
        for (int64_t n_in : {int64_t{256}, int64_t{768}, int64_t{2048}}) {
            if (n_in % block_elems(type) != 0) continue;
            const int64_t n_out = 131;
            Experts ex(type, n_in, n_out, n_experts, seed += 10);
            DeviceBuffer dw = to_device(ex.bytes);
            Activations act(n_in, 9, ++seed);
            const int64_t ldy = n_out + 3;
            DeviceBuffer dy(sizeof(float) * ldy * 9);
            for (int form = 0; form < 2; ++form) {
                const auto& ids = form == 0 ? ids_grouped : ids_single;
                const int x_group = form == 0 ? 3 : 1;
                const int n_slots = static_cast<int>(ids.size());
                dy.fill(0xff);
                const std::string label = shape(type, n_in, n_out, n_slots) + " x_group=" + std::to_string(x_group);
                rc::mmvq_ids(type, dw.as<void>(), ex.row_bytes, ex.mat_stride, n_in, n_out, act.xq.as<void>(), x_group,
                             (form == 0 ? d_grouped : d_single).as<int32_t>(), n_slots, dy.as<float>(), ldy, nullptr);
                sync("mmvq_ids " + label);
                const auto y = dy.download<float>(static_cast<size_t>(ldy * n_slots));
                // slots with a valid id against the reference; a negative id must give exact zeros
                std::vector<float> y_valid, zeros;
                std::vector<int> slot_of;
                for (int s = 0; s < n_slots; ++s) {
                    if (ids[s] < 0) {
                        for (int64_t r = 0; r < n_out; ++r) {
                            if (y[s * ldy + r] != 0.f) {
                                f.add(label + ": slot " + std::to_string(s) + " with id -1 is not zero");
                                break;
                            }
                        }
                    } else {
                        slot_of.push_back(s);
                    }
                }
                for (int s : slot_of) y_valid.insert(y_valid.end(), y.begin() + s * ldy, y.begin() + s * ldy + ldy);
                check.run(f, label, ex.dequantized, act.decoded, n_in, n_out, static_cast<int>(slot_of.size()), y_valid, ldy,
                          tolerance_for(type), [&](int t) { return slot_of[t] / x_group; },
                          [&](int t) { return ids[slot_of[t]]; });
            }
        }
        std::printf("mmvq_ids %-7s worst |err| / sum|w*a| = %.3g\n", name_of(type).c_str(), check.worst);
    }
    f.report("mmvq_ids");
}

// The fused decode forms of the experts step give bit for bit what the separate kernels give: gate and
// up in one launch (mmvq_ids_pair), and the down projection with the weighted sum of each token's slots
// (mmvq_ids_weighted) against mmvq_ids then moe_weighted_sum into zeroed rows. Top-1, top-6 (segments
// that do not fill the block) and top-8 with one and three tokens, a negative id, 131 rows (a partial block).
TEST(CudaMatmul, FusedExpertMatVecsEqualTheSeparateKernels) {
    REQUIRE_GPU();
    const int n_experts = 9;
    const int64_t n_out = 131;
    uint32_t seed = 1700;
    for (GgmlType type : kMmvqTypes) {
        for (int64_t n_in : {int64_t{256}, int64_t{768}}) {
            if (n_in % block_elems(type) != 0) continue;
            Experts a(type, n_in, n_out, n_experts, seed += 20), b(type, n_in, n_out, n_experts, seed += 20);
            DeviceBuffer da = to_device(a.bytes), db = to_device(b.bytes);
            for (int k : {1, 6, 8}) {
                for (int n_tok : {1, 3}) {
                    const int n_slots = n_tok * k;
                    std::mt19937 rng(seed + k + n_tok);
                    std::vector<int32_t> ids(static_cast<size_t>(n_slots));
                    for (auto& e : ids) e = static_cast<int32_t>(rng() % n_experts);
                    if (n_slots > 2) ids[2] = -1;
                    std::vector<float> w(static_cast<size_t>(n_slots));
                    for (auto& v : w) v = static_cast<float>(rng() % 1000) / 997.f;
                    DeviceBuffer d_ids = to_device(ids), d_w = to_device(w);
                    const std::string label = shape(type, n_in, n_out, n_tok) + " k=" + std::to_string(k);
                    // gate/up form: k slots share their token's activation row
                    Activations x(n_in, n_tok, ++seed);
                    const int64_t ldy = n_out + 5;
                    DeviceBuffer y1(sizeof(float) * ldy * n_slots), y2(sizeof(float) * ldy * n_slots),
                        z1(sizeof(float) * ldy * n_slots), z2(sizeof(float) * ldy * n_slots);
                    for (DeviceBuffer* d : {&y1, &y2, &z1, &z2}) d->fill(0x7f);
                    rc::mmvq_ids(type, da.as<void>(), a.row_bytes, a.mat_stride, n_in, n_out, x.xq.as<void>(), k,
                                 d_ids.as<int32_t>(), n_slots, y1.as<float>(), ldy, nullptr);
                    rc::mmvq_ids(type, db.as<void>(), b.row_bytes, b.mat_stride, n_in, n_out, x.xq.as<void>(), k,
                                 d_ids.as<int32_t>(), n_slots, y2.as<float>(), ldy, nullptr);
                    rc::mmvq_ids_pair(type, da.as<void>(), db.as<void>(), a.row_bytes, a.mat_stride, n_in, n_out,
                                      x.xq.as<void>(), k, d_ids.as<int32_t>(), n_slots, z1.as<float>(), z2.as<float>(), ldy,
                                      nullptr);
                    sync("mmvq_ids_pair " + label);
                    const size_t words = static_cast<size_t>(ldy * n_slots);
                    EXPECT_EQ(z1.download<uint32_t>(words), y1.download<uint32_t>(words)) << label << " first set";
                    EXPECT_EQ(z2.download<uint32_t>(words), y2.download<uint32_t>(words)) << label << " second set";
                    // down form: one activation row per slot
                    Activations h(n_in, n_slots, ++seed);
                    const int64_t ldo = n_out + 2;
                    DeviceBuffer dn(sizeof(float) * n_out * n_slots), want(sizeof(float) * ldo * n_tok),
                        got(sizeof(float) * ldo * n_tok);
                    want.fill(0);
                    got.fill(0);
                    rc::mmvq_ids(type, da.as<void>(), a.row_bytes, a.mat_stride, n_in, n_out, h.xq.as<void>(), 1,
                                 d_ids.as<int32_t>(), n_slots, dn.as<float>(), n_out, nullptr);
                    rc::moe_weighted_sum(want.as<float>(), ldo, dn.as<float>(), n_out, d_w.as<float>(), n_tok, k, n_out,
                                         nullptr);
                    rc::mmvq_ids_weighted(type, da.as<void>(), a.row_bytes, a.mat_stride, n_in, n_out, h.xq.as<void>(),
                                          d_ids.as<int32_t>(), d_w.as<float>(), n_tok, k, got.as<float>(), ldo, nullptr);
                    sync("mmvq_ids_weighted " + label);
                    const size_t out_words = static_cast<size_t>(ldo * n_tok);
                    EXPECT_EQ(got.download<uint32_t>(out_words), want.download<uint32_t>(out_words)) << label << " weighted";
                }
            }
        }
    }
    EXPECT_THROW(rc::mmvq_ids_weighted(GgmlType::Q4_K, nullptr, 144, 0, 256, 1, nullptr, nullptr, nullptr, 1, 33, nullptr,
                                       1, nullptr),
                 runtime::Error);
}

// --- programmatic dependent launch (pdl.cuh) ----------------------------------------------------------

// A chain of dependent decode kernels (norm, quantize, mat-vecs, experts by id, SwiGLU, residual adds)
// over 12 "layers": launched with the programmatic attribute, eagerly and as a replayed
// CUDA graph, it gives bit for bit what plain launches give. A kernel that read its input before
// griddepcontrol.wait would see the previous layer's values, not these. (On devices before compute
// capability 9.0 set_pdl stays off and the comparison is trivially equal.)
TEST(CudaMatmul, ProgrammaticLaunchChainEqualsPlainLaunches) {
    REQUIRE_GPU();
    const int64_t n = 2048, n_ff = 768;
    const int n_layers = 12, n_experts = 4, k = 2;
    const auto wf = random_floats(static_cast<size_t>(n * n), 901, 0.05f);
    DeviceBuffer w_sq = to_device(quantize_weights(GgmlType::Q4_K, wf, n, n, 901));
    DeviceBuffer w_q8 = to_device(quantize_weights(GgmlType::Q8_0, wf, n, n, 902));
    Experts gate(GgmlType::Q4_K, n, n_ff, n_experts, 903, Experts::aligned_pad(GgmlType::Q4_K, n, n_ff));
    Experts up(GgmlType::Q4_K, n, n_ff, n_experts, 913, Experts::aligned_pad(GgmlType::Q4_K, n, n_ff));
    Experts down(GgmlType::Q6_K, n_ff, n, n_experts, 923, Experts::aligned_pad(GgmlType::Q6_K, n_ff, n));
    DeviceBuffer dg = to_device(gate.bytes), du = to_device(up.bytes), dd = to_device(down.bytes);
    DeviceBuffer ids = to_device(std::vector<int32_t>{3, 1});
    DeviceBuffer weights = to_device(std::vector<float>{0.7f, 0.3f});
    DeviceBuffer norm_w = to_device(random_floats(static_cast<size_t>(n), 904, 1.f));
    DeviceBuffer x0 = to_device(random_floats(static_cast<size_t>(n), 905, 1.f));
    DeviceBuffer x(sizeof(float) * n), h(sizeof(float) * n), y(sizeof(float) * n), xq(rc::q8_1_row_bytes(n)),
        g(sizeof(float) * k * n_ff), u(sizeof(float) * k * n_ff), hq(rc::q8_1_row_bytes(n_ff) * k),
        dn(sizeof(float) * k * n);
    const size_t rb = row_bytes_of(GgmlType::Q4_K, n), rb8 = row_bytes_of(GgmlType::Q8_0, n);
    cudaStream_t stream;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    auto chain = [&] {
        // from the same start every time (a device copy: it can be captured)
        cuda_ok(cudaMemcpyAsync(x.as<void>(), x0.as<void>(), sizeof(float) * n, cudaMemcpyDeviceToDevice, stream), "x0");
        for (int l = 0; l < n_layers; ++l) {
            rc::rms_norm(x.as<float>(), n, norm_w.as<float>(), h.as<float>(), n, n, 1, 1e-6f, stream);
            rc::quantize_rows_q8_1(h.as<float>(), n, n, 1, xq.as<void>(), stream);
            rc::mmvq(l % 2 ? GgmlType::Q8_0 : GgmlType::Q4_K, (l % 2 ? w_q8 : w_sq).as<void>(), l % 2 ? rb8 : rb, n, n,
                     xq.as<void>(), 1, y.as<float>(), n, stream);
            rc::add_rows(x.as<float>(), n, y.as<float>(), n, n, 1, stream);
            rc::rms_norm(x.as<float>(), n, norm_w.as<float>(), h.as<float>(), n, n, 1, 1e-6f, stream);
            rc::quantize_rows_q8_1(h.as<float>(), n, n, 1, xq.as<void>(), stream);
            rc::mmvq_ids(GgmlType::Q4_K, dg.as<void>(), gate.row_bytes, gate.mat_stride, n, n_ff, xq.as<void>(), k,
                         ids.as<int32_t>(), k, g.as<float>(), n_ff, stream);
            rc::mmvq_ids(GgmlType::Q4_K, du.as<void>(), up.row_bytes, up.mat_stride, n, n_ff, xq.as<void>(), k,
                         ids.as<int32_t>(), k, u.as<float>(), n_ff, stream);
            rc::swiglu(g.as<float>(), u.as<float>(), g.as<float>(), k * n_ff, stream);
            rc::quantize_rows_q8_1(g.as<float>(), n_ff, n_ff, k, hq.as<void>(), stream);
            rc::mmvq_ids(GgmlType::Q6_K, dd.as<void>(), down.row_bytes, down.mat_stride, n_ff, n, hq.as<void>(), 1,
                         ids.as<int32_t>(), k, dn.as<float>(), n, stream);
            rc::moe_weighted_sum(x.as<float>(), n, dn.as<float>(), n, weights.as<float>(), 1, k, n, stream);
        }
    };
    const bool by_default = rc::pdl_enabled();
    rc::set_pdl(false);
    chain();
    cuda_ok(cudaStreamSynchronize(stream), "plain chain");
    const auto want = x.download<uint32_t>(static_cast<size_t>(n));
    rc::set_pdl(true);
    const bool on = rc::pdl_enabled();
    chain();
    cuda_ok(cudaStreamSynchronize(stream), "programmatic chain");
    EXPECT_EQ(x.download<uint32_t>(static_cast<size_t>(n)), want) << "eager, programmatic launches";
    cudaGraph_t graph;
    cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
    chain();
    cuda_ok(cudaStreamEndCapture(stream, &graph), "end capture");
    cudaGraphExec_t exec;
    cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    for (int rep = 0; rep < 3; ++rep) {
        cuda_ok(cudaGraphLaunch(exec, stream), "graph launch");
        cuda_ok(cudaStreamSynchronize(stream), "graph replay");
        EXPECT_EQ(x.download<uint32_t>(static_cast<size_t>(n)), want) << "graph replay " << rep;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    rc::set_pdl(by_default);
    cudaStreamDestroy(stream);
    std::printf("programmatic dependent launch %s on this device\n", on ? "tested" : "not available (compared plain launches)");
}

// --- float weights ------------------------------------------------------------------------------------------

std::vector<uint8_t> float_weights(GgmlType type, const std::vector<float>& w) {
    std::vector<uint8_t> out(w.size() * (type == GgmlType::F32 ? 4 : 2));
    quant::quantize_rows(type, w.data(), out.data(), 1, static_cast<int64_t>(w.size()));
    return out;
}

TEST(CudaMatmul, MmvFloatMatchesDoublePrecisionDots) {
    REQUIRE_GPU();
    Failures f;
    uint32_t seed = 900;
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
        ASSERT_TRUE(rc::mmv_float_supported(type));
        for (int64_t n_in : {int64_t{256}, int64_t{2048}, int64_t{100}}) {
            for (int64_t ldx : {n_in + 4, n_in + 1}) {  // aligned (16-byte loads) and not (scalar loads)
                const int64_t n_out = 77;
                const auto wf = random_floats(static_cast<size_t>(n_out * n_in), ++seed);
                const auto wb = float_weights(type, wf);
                const size_t rb = wb.size() / n_out;
                const auto wd = dequantize_cpu(type, wb, n_out, n_in, rb);
                const auto x = random_floats(static_cast<size_t>(ldx * 8), ++seed);
                std::vector<float> xc(static_cast<size_t>(n_in * 8));  // compact copy for the reference
                for (int t = 0; t < 8; ++t) std::copy_n(x.begin() + t * ldx, n_in, xc.begin() + t * n_in);
                DeviceBuffer dw = to_device(wb), dx = to_device(x);
                const int64_t ldy = n_out + 1;
                DeviceBuffer dy(sizeof(float) * ldy * 8);
                for (int n_tok = 1; n_tok <= 8; ++n_tok) {
                    dy.fill(0xff);
                    const std::string label = shape(type, n_in, n_out, n_tok) + " ldx=" + std::to_string(ldx);
                    rc::mmv_float(type, dw.as<void>(), rb, n_in, n_out, dx.as<float>(), ldx, n_tok, dy.as<float>(), ldy, nullptr);
                    sync("mmv_float " + label);
                    DotCheck check;
                    check.run(f, label, wd, xc, n_in, n_out, n_tok, dy.download<float>(static_cast<size_t>(ldy * n_tok)), ldy,
                              1e-5, [](int t) { return t; }, [](int) { return 0; });
                }
                // ids: 3 experts of their own random rows, slots sharing activation rows in pairs
                const int n_experts = 3;
                const std::vector<int32_t> ids = {2, 0, 2, 2, 1, 0};
                std::vector<uint8_t> wb3;
                std::vector<float> wd3;
                for (int e = 0; e < n_experts; ++e) {
                    const auto w_e = random_floats(static_cast<size_t>(n_out * n_in), ++seed);
                    const auto b_e = float_weights(type, w_e);
                    wb3.insert(wb3.end(), b_e.begin(), b_e.end());
                    const auto d_e = dequantize_cpu(type, b_e, n_out, n_in, rb);
                    wd3.insert(wd3.end(), d_e.begin(), d_e.end());
                }
                DeviceBuffer dw3 = to_device(wb3), dids = to_device(ids);
                dy.fill(0xff);
                const std::string label = shape(type, n_in, n_out, 6) + " ids ldx=" + std::to_string(ldx);
                rc::mmv_float_ids(type, dw3.as<void>(), rb, rb * n_out, n_in, n_out, dx.as<float>(), ldx, 2, dids.as<int32_t>(), 6,
                                  dy.as<float>(), ldy, nullptr);
                sync("mmv_float_ids " + label);
                DotCheck check;
                check.run(f, label, wd3, xc, n_in, n_out, 6, dy.download<float>(static_cast<size_t>(ldy * 6)), ldy, 1e-5,
                          [](int t) { return t / 2; }, [&](int t) { return ids[t]; });
            }
        }
    }
    f.report("mmv_float");
}

// --- dequantization ----------------------------------------------------------------------------------------

const std::vector<GgmlType> kDequantTypes = {
    GgmlType::F32,    GgmlType::F16,    GgmlType::BF16,    GgmlType::Q4_0,   GgmlType::Q4_1,  GgmlType::Q5_0,
    GgmlType::Q5_1,   GgmlType::Q8_0,   GgmlType::Q2_K,    GgmlType::Q3_K,   GgmlType::Q4_K,  GgmlType::Q5_K,
    GgmlType::Q6_K,   GgmlType::IQ4_NL, GgmlType::IQ4_XS,  GgmlType::MXFP4,  GgmlType::TQ1_0, GgmlType::TQ2_0,
    GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,  GgmlType::IQ3_XXS, GgmlType::IQ3_S, GgmlType::IQ1_S,
    GgmlType::IQ1_M};

// Float rows that reach every corner of the f16 conversion: values past 65504, subnormal halves, zeros.
std::vector<uint8_t> float_source(GgmlType type, int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * (type == GgmlType::F32 ? 4 : 2));
    if (type == GgmlType::F32) {
        std::uniform_real_distribution<float> expo(-30.f, 20.f);
        auto* f = reinterpret_cast<float*>(bytes.data());
        for (int64_t i = 0; i < n; ++i) f[i] = (rng() & 1 ? -1.f : 1.f) * std::exp2(expo(rng)) * (1.f + (rng() % 1000) / 1000.f);
    } else {
        auto* h = reinterpret_cast<uint16_t*>(bytes.data());
        for (int64_t i = 0; i < n; ++i) {
            uint16_t v;
            do v = static_cast<uint16_t>(rng());
            while (type == GgmlType::F16 ? (v & 0x7c00) == 0x7c00 : (v & 0x7f80) == 0x7f80);  // no inf/NaN sources
            h[i] = v;
        }
    }
    return bytes;
}

TEST(CudaMatmul, DequantizeIsBitExactWithLibquantRoundedToF16) {
    REQUIRE_GPU();
    rc::prepare_device_tables();
    Failures f;
    uint32_t seed = 1300;
    for (GgmlType type : kDequantTypes) {
        EXPECT_TRUE(rc::dequant_supported(type)) << name_of(type);
        for (int64_t n_in : {int64_t{256}, int64_t{768}}) {
            const int64_t n_rows = 7;
            std::vector<uint8_t> wq;
            if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) {
                wq = float_source(type, n_rows * n_in, ++seed);
            } else {
                ++seed;
                wq = quantize_weights(type, random_floats(static_cast<size_t>(n_rows * n_in), seed, 0.02f), n_rows, n_in, seed);
            }
            const size_t rb = row_bytes_of(type, n_in);
            const auto ref = dequantize_cpu(type, wq, n_rows, n_in, rb);
            DeviceBuffer dw = to_device(wq), dout(sizeof(uint16_t) * n_rows * n_in);
            dout.fill(0xff);
            const std::string label = name_of(type) + " n_in=" + std::to_string(n_in);
            rc::dequantize_rows_f16(type, dw.as<void>(), rb, n_in, n_rows, dout.as<void>(), nullptr);
            sync("dequantize_rows_f16 " + label);
            const auto got = dout.download<uint16_t>(static_cast<size_t>(n_rows * n_in));
            int64_t bad = 0, first = -1;
            for (int64_t i = 0; i < n_rows * n_in; ++i) {
                if (got[i] != quant::f32_to_f16(ref[i])) {
                    if (bad++ == 0) first = i;
                }
            }
            if (bad) {
                std::ostringstream os;
                os << label << ": " << bad << " of " << n_rows * n_in << " halves differ, first at row " << first / n_in
                   << " element " << first % n_in << ": got 0x" << std::hex << got[first] << " want 0x"
                   << quant::f32_to_f16(ref[first]) << std::dec << " (libquant " << ref[first] << ")";
                f.add(os.str());
            }
        }
    }
    f.report("dequantize_rows_f16");
}

// --- grouped experts ------------------------------------------------------------------------------------------

// The stable counting sort on the CPU: offsets, activation row and original slot of each grouped slot.
void group_cpu(const std::vector<int32_t>& ids, int k, int n_experts, std::vector<int32_t>& offsets,
               std::vector<int32_t>& rows, std::vector<int32_t>& slots) {
    offsets.assign(n_experts + 1, 0);
    rows.clear();
    slots.clear();
    for (int e = 0; e < n_experts; ++e) {
        offsets[e] = static_cast<int32_t>(rows.size());
        for (size_t s = 0; s < ids.size(); ++s) {
            if (ids[s] == e) {
                rows.push_back(static_cast<int32_t>(s) / k);
                slots.push_back(static_cast<int32_t>(s));
            }
        }
    }
    offsets[n_experts] = static_cast<int32_t>(rows.size());
}

TEST(CudaMatmul, GroupingIsAStableCountingSortAtEveryScale) {
    REQUIRE_GPU();
    struct Case {
        int n_tok, k, E;
    };
    // one token; fewer slots than a warp; a prompt of 512 and of 4096 tokens (top-8 of 128); 512 and 2048
    // experts (fewer chunks: their counts share the block's shared memory); the largest expert count
    const Case cases[] = {{1, 8, 128}, {7, 2, 8}, {512, 8, 128}, {4096, 8, 128}, {600, 10, 512}, {3, 1, 512},
                          {300, 4, 2048}, {40, 2, 6143}};
    std::mt19937 rng(78);
    for (const Case& c : cases) {
        // k distinct experts per token, skewed towards low ids (many slots on a few experts, many experts
        // with none); one slot in 50 out of range (dropped)
        std::vector<int32_t> ids;
        for (int t = 0; t < c.n_tok; ++t) {
            std::vector<int32_t> all(static_cast<size_t>(c.E));
            std::iota(all.begin(), all.end(), 0);
            for (int j = 0; j < c.k; ++j) {
                const int pick = j + static_cast<int>(rng() % static_cast<uint32_t>(std::max(1, (c.E - j) / 3)));
                std::swap(all[static_cast<size_t>(j)], all[static_cast<size_t>(pick)]);
                ids.push_back(rng() % 50 == 0 ? c.E + 3 : all[static_cast<size_t>(j)]);
            }
        }
        std::vector<int32_t> offsets, rows, slots;
        group_cpu(ids, c.k, c.E, offsets, rows, slots);
        const size_t n_slots = ids.size();
        DeviceBuffer d_ids = to_device(ids), d_off(sizeof(int32_t) * (c.E + 1)), d_rows(sizeof(int32_t) * n_slots),
            d_slots(sizeof(int32_t) * n_slots);
        rc::group_slots_by_expert(d_ids.as<int32_t>(), c.n_tok, c.k, c.E, d_off.as<int32_t>(), d_rows.as<int32_t>(),
                                  d_slots.as<int32_t>(), nullptr);
        sync("group_slots_by_expert");
        const std::string what = "n_tok " + std::to_string(c.n_tok) + " k " + std::to_string(c.k) + " experts " +
                                 std::to_string(c.E);
        EXPECT_EQ(d_off.download<int32_t>(c.E + 1), offsets) << what;
        auto got_rows = d_rows.download<int32_t>(n_slots), got_slots = d_slots.download<int32_t>(n_slots);
        got_rows.resize(rows.size());
        got_slots.resize(slots.size());
        EXPECT_EQ(got_rows, rows) << what;
        EXPECT_EQ(got_slots, slots) << what;
    }
    EXPECT_THROW(rc::group_slots_by_expert(nullptr, 1, 1, 6144, nullptr, nullptr, nullptr, nullptr), runtime::Error);
}

TEST(CudaMatmul, GroupingAndMmqIdsMatchTheCpu) {
    REQUIRE_GPU();
    Failures f;
    const int n_tok = 70, k = 4, n_experts = 9;
    // experts 2, 5 and 7 get no slots; expert 3 gets one slot per token (70: two tiles of 64 with 6 slots in
    // the second, three of 32, nine of 8); a token never repeats an expert
    std::mt19937 rng(77);
    const std::vector<int32_t> used = {0, 1, 3, 4, 6, 8};
    std::vector<int32_t> ids;
    for (int t = 0; t < n_tok; ++t) {
        std::vector<int32_t> pick = {3};
        while (static_cast<int>(pick.size()) < k) {
            const int32_t e = used[rng() % used.size()];
            if (std::find(pick.begin(), pick.end(), e) == pick.end()) pick.push_back(e);
        }
        std::shuffle(pick.begin(), pick.end(), rng);
        ids.insert(ids.end(), pick.begin(), pick.end());
    }
    std::vector<int32_t> offsets, rows, slots;
    group_cpu(ids, k, n_experts, offsets, rows, slots);
    const int n_slots = n_tok * k;
    DeviceBuffer d_ids = to_device(ids), d_off(sizeof(int32_t) * (n_experts + 1)), d_rows(sizeof(int32_t) * n_slots),
        d_slots(sizeof(int32_t) * n_slots);
    rc::group_slots_by_expert(d_ids.as<int32_t>(), n_tok, k, n_experts, d_off.as<int32_t>(), d_rows.as<int32_t>(),
                              d_slots.as<int32_t>(), nullptr);
    sync("group_slots_by_expert");
    EXPECT_EQ(d_off.download<int32_t>(n_experts + 1), offsets);
    EXPECT_EQ(d_rows.download<int32_t>(n_slots), rows);
    EXPECT_EQ(d_slots.download<int32_t>(n_slots), slots);

    int max_count = 0;
    for (int e = 0; e < n_experts; ++e) max_count = std::max(max_count, offsets[e + 1] - offsets[e]);
    using MmqFn = std::function<void(GgmlType, const void*, size_t, size_t, int64_t, int64_t, const void*, const int32_t*,
                                     const int32_t*, int, int, float*, int64_t, cudaStream_t)>;
    struct Kernel {
        std::string name;
        MmqFn fn;
    };
    std::vector<Kernel> kernels = {{"mmq_ids_dp4a", rc::mmq_ids_dp4a}};
    // mmq_ids_mma in a tile shape; grid_slot_tiles 1: one block per (rows, expert) looping over its slot tiles
    const auto mma = [](rc::MmaTile tile, int grid_slot_tiles) -> MmqFn {
        return [=](GgmlType t, const void* w, size_t rb, size_t ms, int64_t ni, int64_t no, const void* xq,
                   const int32_t* off, const int32_t* rows, int ne, int mpe, float* y, int64_t ldy, cudaStream_t st) {
            rc::mmq_ids_mma(t, w, rb, ms, ni, no, xq, off, rows, ne, mpe, y, ldy, st, tile, nullptr, grid_slot_tiles);
        };
    };
    if (rc::mmq_tensor_cores_available()) {
        kernels.push_back({"mmq_ids_mma", mma(rc::MmaTile::Slots64, 0)});
        kernels.push_back({"mmq_ids_mma64s", mma(rc::MmaTile::Slots64Short, 0)});
        kernels.push_back({"mmq_ids_mma loop", mma(rc::MmaTile::Slots64, 1)});
        kernels.push_back({"mmq_ids_mma128", mma(rc::MmaTile::Rows128, 0)});
        kernels.push_back({"mmq_ids_mma128p", mma(rc::MmaTile::Rows128Paired, 0)});
        kernels.push_back({"mmq_ids_mma32", mma(rc::MmaTile::Slots32, 0)});
    }
    uint32_t seed = 2000;
    for (GgmlType type : kMmvqTypes) {
        std::vector<DotCheck> checks(kernels.size());
        DotCheck y_rows_check;
        for (int64_t n_in : {int64_t{256}, int64_t{2048}, int64_t{288}}) {  // 288: a partial stage of 32-blocks
            if (n_in % block_elems(type) != 0) continue;
            const int64_t n_out = 70;
            Experts ex(type, n_in, n_out, n_experts, seed += 20);
            DeviceBuffer dw = to_device(ex.bytes);
            Activations act(n_in, n_tok, ++seed);
            const int64_t ldy = n_out + 2;
            DeviceBuffer dy(sizeof(float) * ldy * n_slots);
            if (rc::mmq_tensor_cores_available()) {
                // results written in routing order (y_rows = the slot of each grouped slot), un-permuted here
                dy.fill(0xff);
                const std::string label = "mmq_ids_mma y_rows " + shape(type, n_in, n_out, n_slots);
                rc::mmq_ids_mma(type, dw.as<void>(), ex.row_bytes, ex.mat_stride, n_in, n_out, act.quads.as<void>(),
                                d_off.as<int32_t>(), d_rows.as<int32_t>(), n_experts, n_slots, dy.as<float>(), ldy, nullptr,
                                rc::MmaTile::Slots64, d_slots.as<int32_t>());
                sync(label);
                const auto y = dy.download<float>(static_cast<size_t>(ldy * n_slots));
                std::vector<float> grouped(y.size());
                for (int g = 0; g < n_slots; ++g) {
                    std::copy_n(y.begin() + slots[g] * ldy, ldy, grouped.begin() + g * ldy);
                }
                y_rows_check.run(f, label, ex.dequantized, act.decoded, n_in, n_out, n_slots, grouped, ldy, 5e-5,
                                 [&](int g) { return rows[g]; }, [&](int g) { return ids[slots[g]]; });
            }
            for (size_t k = 0; k < kernels.size(); ++k) {
                // the tensor-core kernel's minimums use exact integer sums: float rounding only
                const double tol = kernels[k].name == "mmq_ids_dp4a" ? tolerance_for(type) : 5e-5;
                for (int bound : {max_count, n_slots}) {  // the tight bound and a loose one
                    dy.fill(0xff);
                    const std::string label = kernels[k].name + " " + shape(type, n_in, n_out, n_slots) +
                                              " max_per_expert=" + std::to_string(bound);
                    const bool dp4a = kernels[k].name == "mmq_ids_dp4a";
                    kernels[k].fn(type, dw.as<void>(), ex.row_bytes, ex.mat_stride, n_in, n_out,
                                  (dp4a ? act.xq : act.quads).as<void>(),
                                  d_off.as<int32_t>(), d_rows.as<int32_t>(), n_experts, bound, dy.as<float>(), ldy, nullptr);
                    sync(label);
                    checks[k].run(f, label, ex.dequantized, act.decoded, n_in, n_out, n_slots,
                                  dy.download<float>(static_cast<size_t>(ldy * n_slots)), ldy, tol,
                                  [&](int g) { return rows[g]; }, [&](int g) { return ids[slots[g]]; });
                }
            }
        }
        for (size_t k = 0; k < kernels.size(); ++k) {
            std::printf("%-13s %-7s worst |err| / sum|w*a| = %.3g\n", kernels[k].name.c_str(), name_of(type).c_str(), checks[k].worst);
        }
    }
    f.report("mmq_ids");
}

// Several dense matrices of one type in one tensor-core grid give bit for bit what one grouped launch per
// matrix gives (one expert holding every row): Q, K and V of a prompt. Matrices of 131, 0 and 70 rows
// (the grid spans the tallest; the others' extra blocks leave), 9 and 100 tokens, every tile shape.
TEST(CudaMatmul, DenseMatricesInOneGridEqualOneLaunchEach) {
    REQUIRE_GPU();
    if (!rc::mmq_tensor_cores_available()) GTEST_SKIP() << "no int8 tensor cores";
    const int64_t n_outs[3] = {131, 0, 70};
    uint32_t seed = 3100;
    for (GgmlType type : kMmvqTypes) {
        for (int64_t n_in : {int64_t{256}, int64_t{2048}}) {
            if (n_in % block_elems(type) != 0) continue;
            std::vector<DeviceBuffer> w;
            for (int64_t n_out : n_outs) {
                const auto wf = random_floats(static_cast<size_t>(std::max<int64_t>(n_out, 1) * n_in), ++seed);
                w.push_back(to_device(quantize_weights(type, wf, std::max<int64_t>(n_out, 1), n_in, seed)));
            }
            for (int n_tok : {9, 100}) {
                Activations act(n_in, n_tok, ++seed);
                std::vector<int32_t> identity(static_cast<size_t>(n_tok));
                std::iota(identity.begin(), identity.end(), 0);
                DeviceBuffer d_ident = to_device(identity), d_off = to_device(std::vector<int32_t>{0, n_tok});
                for (rc::MmaTile tile : {rc::MmaTile::Slots64, rc::MmaTile::Slots64Short, rc::MmaTile::Slots32,
                                         rc::MmaTile::Rows128, rc::MmaTile::Rows128Paired}) {
                    std::vector<DeviceBuffer> ys_want, ys_got;
                    rc::MmvqMat mats[3];
                    for (int m = 0; m < 3; ++m) {
                        const int64_t ldy = n_outs[m] + 3;
                        ys_want.emplace_back(sizeof(float) * ldy * n_tok);
                        ys_got.emplace_back(sizeof(float) * ldy * n_tok);
                        ys_want.back().fill(0x7f);
                        ys_got.back().fill(0x7f);
                        if (n_outs[m] > 0) {
                            rc::mmq_ids_mma(type, w[m].as<void>(), row_bytes_of(type, n_in), 0, n_in, n_outs[m],
                                            act.quads.as<void>(), d_off.as<int32_t>(), d_ident.as<int32_t>(), 1, n_tok,
                                            ys_want.back().as<float>(), ldy, nullptr, tile);
                        }
                        mats[m] = {w[m].as<void>(), row_bytes_of(type, n_in), n_outs[m], ys_got.back().as<float>(), ldy};
                    }
                    rc::mmq_mma_dense(type, mats, 3, n_in, act.quads.as<void>(), d_off.as<int32_t>(), d_ident.as<int32_t>(),
                                      n_tok, nullptr, tile);
                    const std::string label = shape(type, n_in, 131, n_tok) + " tile " + std::to_string(static_cast<int>(tile));
                    sync("mmq_mma_dense " + label);
                    for (int m = 0; m < 3; ++m) {
                        const size_t words = static_cast<size_t>((n_outs[m] + 3) * n_tok);
                        EXPECT_EQ(ys_got[m].download<uint32_t>(words), ys_want[m].download<uint32_t>(words))
                            << label << " matrix " << m;
                    }
                }
            }
        }
    }
}

TEST(CudaMatmul, DenseSplitInTwoMatchesOneBlockPerTileAndRepeats) {
    REQUIRE_GPU();
    if (!rc::mmq_tensor_cores_available()) GTEST_SKIP() << "no int8 tensor cores";
    const int64_t n_outs[2] = {131, 70};
    uint32_t seed = 3300;
    for (GgmlType type : kMmvqTypes) {
        for (int64_t n_in : {int64_t{2048}, int64_t{2304}}) {  // 2304: the halves end mid-superblock for 256-blocks
            if (n_in % block_elems(type) != 0) continue;
            std::vector<DeviceBuffer> w;
            for (int64_t n_out : n_outs) {
                const auto wf = random_floats(static_cast<size_t>(n_out * n_in), ++seed);
                w.push_back(to_device(quantize_weights(type, wf, n_out, n_in, seed)));
            }
            const int n_tok = 100;
            Activations act(n_in, n_tok, ++seed);
            std::vector<int32_t> identity(static_cast<size_t>(n_tok));
            std::iota(identity.begin(), identity.end(), 0);
            DeviceBuffer d_ident = to_device(identity), d_off = to_device(std::vector<int32_t>{0, n_tok});
            for (rc::MmaTile tile : {rc::MmaTile::Slots64Short, rc::MmaTile::Slots64, rc::MmaTile::Rows128Paired}) {
                std::vector<DeviceBuffer> ys;  // [run][matrix]: unsplit, split, split again
                for (int run = 0; run < 3; ++run) {
                    rc::MmvqMat mats[2];
                    for (int m = 0; m < 2; ++m) {
                        ys.emplace_back(sizeof(float) * (n_outs[m] + 3) * n_tok);
                        ys.back().fill(0x7f);  // the split must zero what it adds into
                        mats[m] = {w[m].as<void>(), row_bytes_of(type, n_in), n_outs[m], ys.back().as<float>(), n_outs[m] + 3};
                    }
                    rc::mmq_mma_dense(type, mats, 2, n_in, act.quads.as<void>(), d_off.as<int32_t>(), d_ident.as<int32_t>(),
                                      n_tok, nullptr, tile, run == 0 ? 1 : 2);
                }
                const std::string label = shape(type, n_in, 131, n_tok) + " tile " + std::to_string(static_cast<int>(tile));
                sync("mmq_mma_dense split " + label);
                for (int m = 0; m < 2; ++m) {
                    const int64_t ldy = n_outs[m] + 3;
                    const auto one = ys[static_cast<size_t>(m)].download<float>(static_cast<size_t>(ldy * n_tok));
                    const auto split = ys[static_cast<size_t>(2 + m)].download<float>(static_cast<size_t>(ldy * n_tok));
                    const auto again = ys[static_cast<size_t>(4 + m)].download<float>(static_cast<size_t>(ldy * n_tok));
                    double worst = 0.0, scale = 0.0;
                    for (int t = 0; t < n_tok; ++t) {
                        for (int64_t r = 0; r < n_outs[m]; ++r) {
                            const size_t i = static_cast<size_t>(t * ldy + r);
                            worst = std::max(worst, static_cast<double>(std::fabs(split[i] - one[i])));
                            scale = std::max(scale, static_cast<double>(std::fabs(one[i])));
                            ASSERT_EQ(std::bit_cast<uint32_t>(split[i]), std::bit_cast<uint32_t>(again[i]))
                                << label << " matrix " << m << ": a split run must repeat bit for bit";
                        }
                    }
                    // two partial sums of the same float products: a few ulps of the largest output
                    EXPECT_LE(worst, 1e-5 * scale) << label << " matrix " << m;
                    EXPECT_GT(scale, 0.0) << label;
                }
            }
        }
    }
    EXPECT_THROW(rc::mmq_mma_dense(GgmlType::Q4_0, nullptr, 1, 256, nullptr, nullptr, nullptr, 4, nullptr,
                                   rc::MmaTile::Slots64Short, 3),
                 runtime::Error);
}

// --- argument checks (no kernel runs) ---------------------------------------------------------------------------

TEST(CudaMatmul, BadArgumentsAreErrorsNotLaunches) {
    EXPECT_FALSE(rc::mmvq_supported(GgmlType::IQ2_XXS));
    EXPECT_FALSE(rc::mmvq_supported(GgmlType::F16));
    EXPECT_FALSE(rc::dequant_supported(GgmlType::I32));
    EXPECT_FALSE(rc::mmv_float_supported(GgmlType::Q4_0));
    EXPECT_THROW(rc::mmvq(GgmlType::Q4_0, nullptr, 18, 64, 4, nullptr, 9, nullptr, 4, nullptr), runtime::Error);
    EXPECT_THROW(rc::mmvq(GgmlType::Q4_K, nullptr, 144, 128, 4, nullptr, 1, nullptr, 4, nullptr), runtime::Error);
    EXPECT_THROW(rc::mmvq(GgmlType::IQ2_XXS, nullptr, 66, 256, 4, nullptr, 1, nullptr, 4, nullptr), runtime::Error);
    EXPECT_THROW(rc::quantize_rows_q8_1(nullptr, 40, 40, 1, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::dequantize_rows_f16(GgmlType::I32, nullptr, 4, 8, 1, nullptr, nullptr), runtime::Error);
    EXPECT_THROW(rc::mmv_float(GgmlType::Q8_0, nullptr, 34, 32, 1, nullptr, 32, 1, nullptr, 1, nullptr), runtime::Error);
}

}  // namespace
