// cuda-ops-bench: time of the CUDA attention kernel at decode (one token against 512 to 32768 cached
// positions) and prefill (512 and 4096 tokens from position 0), 32 query heads over 4 KV heads of 128,
// with f16 and q8_0 caches. Prints microseconds per call, and for decode the rate at which the cache is
// read, for prefill the arithmetic rate (4 * heads * head_dim flops per (query, key) pair, causal), for the
// f32 and the tensor-core kernel.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/op_kernels.h"
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
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
