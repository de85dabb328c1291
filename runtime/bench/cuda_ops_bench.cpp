// cuda-ops-bench: time of the CUDA attention kernel at decode (one token against 512 to 32768 cached
// positions) and prefill (512 and 4096 tokens from position 0), 32 query heads over 4 KV heads of 128,
// with f16 and q8_0 caches. Prints microseconds per call, and for decode the rate at which the cache is
// read, for prefill the arithmetic rate (4 * heads * head_dim flops per (query, key) pair, causal), for the
// f32 and the tensor-core kernel. Then the MoE decode step of Qwen3-30B-A3B (2048 -> 768 Q4_K gate and
// up, 768 -> 2048 Q6_K down, top-8 of 128 experts) as the executor launches it (eight launches), captured
// in a CUDA graph of 48 layers as decode runs it, with the weight rows read directly and staged through
// shared memory (set_weight_staging), and with programmatic dependent launch (pdl.cuh) where the device
// has it.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/matmul_kernels.h"
#include "cuda/op_kernels.h"
#include "cuda/pdl.h"
#include "gguf/types.h"
#include "quant/quant.h"

namespace {

void ok(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

struct Buf {
    void* p = nullptr;
    explicit Buf(size_t bytes) { ok(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc"); }
    ~Buf() { cudaFree(p); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
};

constexpr int kHead = 32, kHeadKv = 4, kDim = 128;

// Fills n_ctx cache rows with quantized pseudo-random values (a cheap generator: the values do not matter).
void fill_cache(void* dst, gguf::GgmlType type, int n_ctx) {
    const int64_t nk = kHeadKv * kDim;
    std::vector<float> x(static_cast<size_t>(n_ctx) * nk);
    uint32_t s = 12345;
    for (auto& v : x) {
        s = s * 1664525u + 1013904223u;
        v = static_cast<float>(s >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    std::vector<uint8_t> bytes(gguf::row_size(type, nk) * static_cast<size_t>(n_ctx));
    quant::quantize_rows(type, x.data(), bytes.data(), n_ctx, nk);
    ok(cudaMemcpy(dst, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
}

// Microseconds per attention call: n_tok tokens whose first is at pos0, over a cache of n_ctx rows.
double time_attention(gguf::GgmlType type, int n_tok, int pos0, int n_ctx, int reps,
                      runtime::cuda::AttentionKernel kernel = runtime::cuda::AttentionKernel::Auto) {
    const int64_t nq = kHead * kDim, nk = kHeadKv * kDim;
    const size_t row = gguf::row_size(type, nk);
    Buf k(row * n_ctx), v(row * n_ctx), q(sizeof(float) * nq * n_tok), out(sizeof(float) * nq * n_tok),
        pos(sizeof(int32_t)), scratch(runtime::cuda::attention_scratch_bytes(n_tok, kHead, kDim, n_ctx));
    fill_cache(k.p, type, n_ctx);
    fill_cache(v.p, type, n_ctx);
    std::vector<float> qh(static_cast<size_t>(nq) * n_tok);
    for (size_t i = 0; i < qh.size(); ++i) qh[i] = std::sin(static_cast<float>(i));
    ok(cudaMemcpy(q.p, qh.data(), qh.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
    ok(cudaMemcpy(pos.p, &pos0, sizeof(int32_t), cudaMemcpyHostToDevice), "cudaMemcpy");
    const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
    auto call = [&] {
        runtime::cuda::attention(static_cast<float*>(q.p), nq, k.p, type, row, v.p, type, row, n_tok, kHead, kHeadKv,
                                 kDim, kDim, scale, static_cast<int32_t*>(pos.p), n_ctx, static_cast<float*>(out.p), nq,
                                 scratch.p, nullptr, kernel);
    };
    for (int i = 0; i < 3; ++i) call();
    ok(cudaDeviceSynchronize(), "warm-up");
    cudaEvent_t e0, e1;
    ok(cudaEventCreate(&e0), "cudaEventCreate");
    ok(cudaEventCreate(&e1), "cudaEventCreate");
    ok(cudaEventRecord(e0), "cudaEventRecord");
    for (int i = 0; i < reps; ++i) call();
    ok(cudaEventRecord(e1), "cudaEventRecord");
    ok(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 1000.0 * ms / reps;
}

// Microseconds per layer of the MoE decode step as the executor runs it, replayed as a graph of 48 layers whose
// experts differ (so the weights come from memory, not L2, as in a model).
double time_moe_decode() {
    using gguf::GgmlType;
    namespace rc = runtime::cuda;
    constexpr int kExperts = 128, kTop = 8, kEmbd = 2048, kFf = 768, kLayers = 48;
    const size_t rb_gu = gguf::row_size(GgmlType::Q4_K, kEmbd), rb_d = gguf::row_size(GgmlType::Q6_K, kFf);
    const size_t stride_gu = rb_gu * kFf, stride_d = rb_d * kEmbd;
    // constant bytes: small finite scales, the values do not matter for the time
    Buf wg(stride_gu * kExperts), wu(stride_gu * kExperts), wd(stride_d * kExperts);
    for (Buf* b : {&wg, &wu}) ok(cudaMemset(b->p, 0x11, stride_gu * kExperts), "cudaMemset");
    ok(cudaMemset(wd.p, 0x11, stride_d * kExperts), "cudaMemset");
    std::vector<int32_t> ids(kLayers * kTop);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37) % kExperts);
    std::vector<float> w(kLayers * kTop, 1.0f / kTop), xh(kEmbd);
    for (int i = 0; i < kEmbd; ++i) xh[i] = std::sin(static_cast<float>(i));
    Buf d_ids(ids.size() * 4), d_w(w.size() * 4), x(kEmbd * 4), out(kEmbd * 4), xq(rc::q8_1_row_bytes(kEmbd)),
        h_g(kTop * kFf * 4), h_u(kTop * kFf * 4), hq(rc::q8_1_row_bytes(kFf) * kTop), down(kTop * kEmbd * 4);
    ok(cudaMemcpy(d_ids.p, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    ok(cudaMemcpy(d_w.p, w.data(), w.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    ok(cudaMemcpy(x.p, xh.data(), xh.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    cudaStream_t stream;
    ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    auto* fx = static_cast<float*>(x.p);
    auto* fo = static_cast<float*>(out.p);
    auto* hg = static_cast<float*>(h_g.p);
    auto* hu = static_cast<float*>(h_u.p);
    auto layer = [&](int l) {
        const int32_t* lid = static_cast<int32_t*>(d_ids.p) + l * kTop;
        const float* lw = static_cast<float*>(d_w.p) + l * kTop;
        rc::quantize_rows_q8_1(fx, kEmbd, kEmbd, 1, xq.p, stream);
        rc::mmvq_ids(GgmlType::Q4_K, wg.p, rb_gu, stride_gu, kEmbd, kFf, xq.p, kTop, lid, kTop, hg, kFf, stream);
        rc::mmvq_ids(GgmlType::Q4_K, wu.p, rb_gu, stride_gu, kEmbd, kFf, xq.p, kTop, lid, kTop, hu, kFf, stream);
        rc::swiglu(hg, hu, hg, kTop * kFf, stream);
        rc::quantize_rows_q8_1(hg, kFf, kFf, kTop, hq.p, stream);
        rc::mmvq_ids(GgmlType::Q6_K, wd.p, rb_d, stride_d, kFf, kEmbd, hq.p, 1, lid, kTop,
                     static_cast<float*>(down.p), kEmbd, stream);
        ok(cudaMemsetAsync(fo, 0, kEmbd * 4, stream), "cudaMemsetAsync");
        rc::moe_weighted_sum(fo, kEmbd, static_cast<float*>(down.p), kEmbd, lw, 1, kTop, kEmbd, stream);
    };
    cudaGraph_t graph;
    ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    for (int l = 0; l < kLayers; ++l) layer(l);
    ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec;
    ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (int i = 0; i < 3; ++i) ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    ok(cudaStreamSynchronize(stream), "warm-up");
    cudaEvent_t e0, e1;
    ok(cudaEventCreate(&e0), "cudaEventCreate");
    ok(cudaEventCreate(&e1), "cudaEventCreate");
    constexpr int kReps = 50;
    ok(cudaEventRecord(e0, stream), "cudaEventRecord");
    for (int i = 0; i < kReps; ++i) ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    ok(cudaEventRecord(e1, stream), "cudaEventRecord");
    ok(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    return 1000.0 * ms / kReps / kLayers;
}

}  // namespace

int main() {
    try {
        int n_dev = 0;
        if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
            std::fprintf(stderr, "error: no CUDA device\n");
            return 1;
        }
        cudaDeviceProp prop{};
        ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        std::printf("device: %s; attention %d heads / %d KV heads, head size %d\n", prop.name, kHead, kHeadKv, kDim);
        for (auto type : {gguf::GgmlType::F16, gguf::GgmlType::Q8_0}) {
            const std::string tn(gguf::type_name(type));
            for (int ctx : {512, 4096, 32768}) {
                const double us = time_attention(type, 1, ctx - 1, ctx, 200);
                const double bytes = 2.0 * gguf::row_size(type, kHeadKv * kDim) * ctx;
                std::printf("decode  %-5s ctx %6d: %9.1f us  (%.0f GB/s of cache)\n", tn.c_str(), ctx, us,
                            bytes / us / 1e3);
            }
            for (int n : {512, 4096}) {
                for (auto kernel : {runtime::cuda::AttentionKernel::F32, runtime::cuda::AttentionKernel::TensorCore}) {
                    const double us = time_attention(type, n, 0, n, n > 1000 ? 5 : 20, kernel);
                    const double flops = 4.0 * kHead * kDim * (static_cast<double>(n) * (n + 1) / 2);
                    std::printf("prefill %-5s %5d tok, %-12s: %9.1f us  (%.1f TFLOP/s)\n", tn.c_str(), n,
                                kernel == runtime::cuda::AttentionKernel::F32 ? "f32" : "tensor cores", us,
                                flops / us / 1e6);
                }
            }
        }
        for (bool staged : {false, true}) {
            runtime::cuda::set_weight_staging(staged);
            std::printf("moe decode (Qwen3-30B-A3B experts, graph of 48 layers), rows %-8s    : %7.2f us per layer\n",
                        staged ? "staged" : "direct", time_moe_decode());
        }
        runtime::cuda::set_weight_staging(false);
        // with programmatic dependent launch (pdl.cuh; compute capability 9.0 and later)
        runtime::cuda::set_pdl(true);
        if (runtime::cuda::pdl_enabled()) {
            std::printf("moe decode (Qwen3-30B-A3B experts, graph of 48 layers), rows direct, pdl: %7.2f us per layer\n",
                        time_moe_decode());
        }
        runtime::cuda::set_pdl(false);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
