// cuda-matmul-bench: speed of the CUDA matrix kernels at the shapes of Qwen3-30B-A3B (hidden 2048, 128
// experts of 768, top-8, vocabulary 151936), printed as a Markdown table.
//
//   mmvq / mmvq_ids   GB/s of weight bytes read per call (decode), and that as % of 3.9 TB/s (what the
//                     H200 reaches in practice). Weights rotate over copies (or expert sets) larger than
//                     the L2 cache, so the figure is the device memory's.
//   mmq_ids_mma/dp4a  TFLOP/s (2 * slots * n_in * n_out) of the grouped expert matmul at 512 tokens, both
//                     kernels (the tensor-core one only where the device has int8 mma; each MmaTile, the
//                     default with the tight and with the loose bound the executor passes).
//   dense prefill     TFLOP/s of a dense matmul at 16..512 tokens: the int8 tiles (quantize + mmq_ids with
//                     one expert) against dequantize to f16 + cuBLAS (convert + dequantize + GemmEx), the
//                     choice the executor makes at kDequantRows.
//   dequantize        GB/s of f16 written (the dequantize + cuBLAS prefill path's first half).
//
// Usage: cuda-matmul-bench [device] [decode]. Random weights (quantized by libquant) and activations;
// `decode` runs only the mat-vec rows and the grouping of slots by expert.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda/backend_kernels.h"
#include "cuda/matmul_kernels.h"
#include "gguf/types.h"
#include "quant/quant.h"

namespace {

using gguf::GgmlType;
namespace rc = runtime::cuda;

void ok(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        std::fprintf(stderr, "error: %s: %s\n", what, cudaGetErrorString(e));
        std::exit(1);
    }
}

struct Buffer {
    void* p = nullptr;
    explicit Buffer(size_t n) { ok(cudaMalloc(&p, std::max<size_t>(n, 16)), "cudaMalloc"); }
    ~Buffer() { cudaFree(p); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
};

// Rows of random weights of `type`, quantized once on the CPU and copied to fill `bytes` on the device.
void fill_weights(GgmlType type, int64_t n_in, void* dst, size_t bytes) {
    const int64_t rows = 64;
    std::vector<float> w(static_cast<size_t>(rows * n_in));
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.f, 1.f);
    for (auto& x : w) x = dist(rng);
    std::vector<float> imatrix(static_cast<size_t>(n_in), 1.f);
    std::vector<uint8_t> q(gguf::row_size(type, n_in) * rows);
    quant::quantize_rows(type, w.data(), q.data(), rows, n_in, imatrix.data());
    for (size_t at = 0; at < bytes; at += q.size()) {
        ok(cudaMemcpy(static_cast<uint8_t*>(dst) + at, q.data(), std::min(q.size(), bytes - at), cudaMemcpyHostToDevice),
           "weights upload");
    }
}

// Milliseconds per call of f(i) (i counts the calls), averaged over `reps` after a warm-up.
double time_ms(const std::function<void(int)>& f, int reps = 100) {
    for (int i = 0; i < 5; ++i) f(i);
    cudaEvent_t a, b;
    ok(cudaEventCreate(&a), "event");
    ok(cudaEventCreate(&b), "event");
    ok(cudaEventRecord(a), "event");
    for (int i = 0; i < reps; ++i) f(i);
    ok(cudaEventRecord(b), "event");
    ok(cudaEventSynchronize(b), "kernel run");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, a, b), "event");
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms / reps;
}

constexpr size_t kRotateBytes = size_t{512} << 20;  // well past the H200's 50 MB L2
constexpr double kPeakGBs = 3900;  // device memory bandwidth the H200 reaches in practice


void bench_dense(GgmlType type, int64_t n_in, int64_t n_out, int n_tok, const char* what) {
    const size_t rb = gguf::row_size(type, n_in), mat = rb * n_out;
    const int copies = static_cast<int>(std::max<size_t>(1, kRotateBytes / mat));
    Buffer w(mat * copies), x(sizeof(float) * n_in * 8), xq(rc::q8_1_row_bytes(n_in) * 8), y(sizeof(float) * n_out * 8);
    fill_weights(type, n_in, w.p, mat * copies);
    ok(cudaMemset(x.p, 0, sizeof(float) * n_in * 8), "memset");
    rc::quantize_rows_q8_1(static_cast<float*>(x.p), n_in, n_in, n_tok, xq.p, nullptr);
    const double ms = time_ms([&](int i) {
        rc::mmvq(type, static_cast<uint8_t*>(w.p) + (i % copies) * mat, rb, n_in, n_out, xq.p, n_tok, static_cast<float*>(y.p),
                 n_out, nullptr);
    });
    const double gbs = mat / (ms * 1e6);
    std::printf("| mmvq %-18s | %-7s | %6lld x %-6lld | %d tok | %8.1f us | %7.0f GB/s (%3.0f%%) |\n", what,
                std::string(gguf::type_traits(type).name).c_str(), static_cast<long long>(n_out), static_cast<long long>(n_in),
                n_tok, ms * 1e3, gbs, 100 * gbs / kPeakGBs);
}

void bench_experts(GgmlType type, int64_t n_in, int64_t n_out, int x_group, const char* what) {
    const int n_experts = 128, k = 8;
    const size_t rb = gguf::row_size(type, n_in), mat = rb * n_out;
    Buffer w(mat * n_experts), xq(rc::q8_1_row_bytes(n_in) * k), y(sizeof(float) * n_out * k);
    fill_weights(type, n_in, w.p, mat * n_experts);
    ok(cudaMemset(xq.p, 0, rc::q8_1_row_bytes(n_in) * k), "memset");
    // 64 sets of 8 distinct experts, cycled: consecutive calls rarely find their weights in L2
    const int n_sets = 64;
    std::vector<int32_t> ids(static_cast<size_t>(n_sets * k));
    std::mt19937 rng(3);
    for (int s = 0; s < n_sets; ++s) {
        std::vector<int32_t> all(n_experts);
        std::iota(all.begin(), all.end(), 0);
        std::shuffle(all.begin(), all.end(), rng);
        std::copy_n(all.begin(), k, ids.begin() + s * k);
    }
    Buffer d_ids(sizeof(int32_t) * ids.size());
    ok(cudaMemcpy(d_ids.p, ids.data(), sizeof(int32_t) * ids.size(), cudaMemcpyHostToDevice), "ids upload");
    const double ms = time_ms([&](int i) {
        rc::mmvq_ids(type, w.p, rb, mat, n_in, n_out, xq.p, x_group, static_cast<int32_t*>(d_ids.p) + (i % n_sets) * k, k,
                     static_cast<float*>(y.p), n_out, nullptr);
    });
    const double gbs = k * mat / (ms * 1e6);
    std::printf("| mmvq_ids %-14s | %-7s | %6lld x %-6lld | 8 ids | %8.1f us | %7.0f GB/s (%3.0f%%) |\n", what,
                std::string(gguf::type_traits(type).name).c_str(), static_cast<long long>(n_out), static_cast<long long>(n_in),
                ms * 1e3, gbs, 100 * gbs / kPeakGBs);
}

// group_slots_by_expert at 512 tokens x top-8 of 128: uniform random routing, and every token on the
// same 8 experts (as the synthetic Qwen3-30B-A3B routes a layer).
void bench_grouping() {
    const int n_tok = 512, n_experts = 128, k = 8, n_slots = n_tok * k;
    for (bool same : {false, true}) {
        std::vector<int32_t> ids(static_cast<size_t>(n_slots));
        std::mt19937 rng(5);
        for (int t = 0; t < n_tok; ++t) {
            std::vector<int32_t> all(n_experts);
            std::iota(all.begin(), all.end(), 0);
            if (!same) std::shuffle(all.begin(), all.end(), rng);
            std::copy_n(all.begin(), k, ids.begin() + t * k);
        }
        Buffer d_ids(sizeof(int32_t) * n_slots), off(sizeof(int32_t) * (n_experts + 1)),
            rows(sizeof(int32_t) * n_slots), slots(sizeof(int32_t) * n_slots);
        ok(cudaMemcpy(d_ids.p, ids.data(), sizeof(int32_t) * n_slots, cudaMemcpyHostToDevice), "ids upload");
        const double ms = time_ms([&](int) {
            rc::group_slots_by_expert(static_cast<int32_t*>(d_ids.p), n_tok, k, n_experts, static_cast<int32_t*>(off.p),
                                      static_cast<int32_t*>(rows.p), static_cast<int32_t*>(slots.p), nullptr);
        }, 50);
        std::printf("| group_slots_by_expert    | ids     | %s | 512 tok | %8.1f us | |\n",
                    same ? "all on 8 experts" : "uniform random ", ms * 1e3);
    }
}

void bench_mmq_ids(GgmlType type, int64_t n_in, int64_t n_out, const char* what) {
    const int n_tok = 512, n_experts = 128, k = 8, n_slots = n_tok * k;
    const size_t rb = gguf::row_size(type, n_in), mat = rb * n_out;
    // activations as q8_1 blocks (dp4a) and in the quad layout (tensor cores)
    const size_t xq_bytes = std::max(rc::q8_1_row_bytes(n_in), rc::q8_1_quad_row_bytes(n_in)) * n_tok;
    Buffer w(mat * n_experts), xq(xq_bytes), y(sizeof(float) * n_out * n_slots);
    fill_weights(type, n_in, w.p, mat * n_experts);
    ok(cudaMemset(xq.p, 0, xq_bytes), "memset");
    std::vector<int32_t> ids(static_cast<size_t>(n_slots));
    std::vector<int> count(n_experts, 0);
    std::mt19937 rng(5);
    for (int t = 0; t < n_tok; ++t) {
        std::vector<int32_t> all(n_experts);
        std::iota(all.begin(), all.end(), 0);
        std::shuffle(all.begin(), all.end(), rng);
        for (int j = 0; j < k; ++j) {
            ids[t * k + j] = all[j];
            ++count[all[j]];
        }
    }
    const int max_per_expert = *std::max_element(count.begin(), count.end());
    Buffer d_ids(sizeof(int32_t) * n_slots), off(sizeof(int32_t) * (n_experts + 1)), rows(sizeof(int32_t) * n_slots),
        slots(sizeof(int32_t) * n_slots);
    ok(cudaMemcpy(d_ids.p, ids.data(), sizeof(int32_t) * n_slots, cudaMemcpyHostToDevice), "ids upload");
    const double group_ms = time_ms([&](int) {
        rc::group_slots_by_expert(static_cast<int32_t*>(d_ids.p), n_tok, k, n_experts, static_cast<int32_t*>(off.p),
                                  static_cast<int32_t*>(rows.p), static_cast<int32_t*>(slots.p), nullptr);
    }, 20);
    rc::group_slots_by_expert(static_cast<int32_t*>(d_ids.p), n_tok, k, n_experts, static_cast<int32_t*>(off.p),
                              static_cast<int32_t*>(rows.p), static_cast<int32_t*>(slots.p), nullptr);
    const double flop = 2.0 * n_slots * n_in * n_out;
    struct Variant {
        const char* name;
        bool dp4a;
        rc::MmaTile tile;
        int bound;
    };
    const Variant variants[] = {{"mma64", false, rc::MmaTile::Slots64, max_per_expert},
                                {"mma64 loose", false, rc::MmaTile::Slots64, n_tok},
                                {"mma64 short", false, rc::MmaTile::Slots64Short, max_per_expert},
                                {"mma32", false, rc::MmaTile::Slots32, max_per_expert},
                                {"mma128 rows", false, rc::MmaTile::Rows128, max_per_expert},
                                {"mma128 paired", false, rc::MmaTile::Rows128Paired, max_per_expert},
                                {"dp4a", true, rc::MmaTile::Slots64, max_per_expert}};
    for (const Variant& v : variants) {
        if (!v.dp4a && !rc::mmq_tensor_cores_available()) continue;
        const double ms = time_ms([&](int) {
            const auto off_p = static_cast<int32_t*>(off.p);
            const auto rows_p = static_cast<int32_t*>(rows.p);
            if (v.dp4a) {
                rc::mmq_ids_dp4a(type, w.p, rb, mat, n_in, n_out, xq.p, off_p, rows_p, n_experts, v.bound,
                                 static_cast<float*>(y.p), n_out, nullptr);
            } else {
                rc::mmq_ids_mma(type, w.p, rb, mat, n_in, n_out, xq.p, off_p, rows_p, n_experts, v.bound,
                                static_cast<float*>(y.p), n_out, nullptr, v.tile);
            }
        }, 20);
        std::printf("| mmq_ids %-11s %-7s | %-7s | %6lld x %-6lld | 512 tok | %8.1f us | %7.2f TFLOP/s, grouping %.1f us, max/expert %d |\n",
                    v.name, what, std::string(gguf::type_traits(type).name).c_str(), static_cast<long long>(n_out),
                    static_cast<long long>(n_in), ms * 1e3, flop / (ms * 1e9), group_ms * 1e3, max_per_expert);
    }
}

// A dense quantized matmul at prefill sizes both ways the executor can run it (kDequantRows picks).
void bench_dense_prefill(GgmlType type, int64_t n_in, int64_t n_out, const char* what) {
    const int max_tok = 512;
    const size_t rb = gguf::row_size(type, n_in), mat = rb * n_out;
    Buffer w(mat), x(sizeof(float) * n_in * max_tok), xq(std::max(rc::q8_1_row_bytes(n_in), rc::q8_1_quad_row_bytes(n_in)) * max_tok),
        x16(sizeof(uint16_t) * n_in * max_tok), w16(sizeof(uint16_t) * n_in * n_out), y(sizeof(float) * n_out * max_tok);
    fill_weights(type, n_in, w.p, mat);
    ok(cudaMemset(x.p, 0, sizeof(float) * n_in * max_tok), "memset");
    // one expert holding every row: offsets {0, n} and the identity row map
    std::vector<int32_t> ident(max_tok);
    std::iota(ident.begin(), ident.end(), 0);
    Buffer d_ident(sizeof(int32_t) * max_tok), d_off(sizeof(int32_t) * 2);
    ok(cudaMemcpy(d_ident.p, ident.data(), sizeof(int32_t) * max_tok, cudaMemcpyHostToDevice), "upload");
    cublasHandle_t h = nullptr;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "error: cublasCreate failed\n");
        std::exit(1);
    }
    for (int n_tok : {16, 32, 64, 128, 256, 512}) {
        const int32_t offsets[2] = {0, n_tok};
        ok(cudaMemcpy(d_off.p, offsets, sizeof(offsets), cudaMemcpyHostToDevice), "upload");
        const double flop = 2.0 * n_tok * n_in * n_out;
        const double ms_int8 = time_ms([&](int) {
            const auto off_p = static_cast<int32_t*>(d_off.p);
            const auto ident_p = static_cast<int32_t*>(d_ident.p);
            if (rc::mmq_tensor_cores_available()) {
                rc::quantize_rows_q8_1_quads(static_cast<float*>(x.p), n_in, n_in, n_tok, xq.p, nullptr);
                rc::mmq_ids_mma(type, w.p, rb, 0, n_in, n_out, xq.p, off_p, ident_p, 1, n_tok, static_cast<float*>(y.p),
                                n_out, nullptr);
            } else {
                rc::quantize_rows_q8_1(static_cast<float*>(x.p), n_in, n_in, n_tok, xq.p, nullptr);
                rc::mmq_ids_dp4a(type, w.p, rb, 0, n_in, n_out, xq.p, off_p, ident_p, 1, n_tok, static_cast<float*>(y.p),
                                 n_out, nullptr);
            }
        }, 50);
        bool failed = false;
        const double ms_f16 = time_ms([&](int) {
            const float one = 1.f, zero = 0.f;
            rc::f32_to_f16_rows(static_cast<float*>(x.p), n_in, n_in, n_tok, static_cast<uint16_t*>(x16.p), nullptr);
            rc::dequantize_rows_f16(type, w.p, rb, n_in, n_out, w16.p, nullptr);
            failed |= cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n_out), n_tok, static_cast<int>(n_in), &one,
                                   w16.p, CUDA_R_16F, static_cast<int>(n_in), x16.p, CUDA_R_16F, static_cast<int>(n_in), &zero,
                                   y.p, CUDA_R_32F, static_cast<int>(n_out), CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS;
        }, 50);
        if (failed) {
            std::fprintf(stderr, "error: cublasGemmEx failed\n");
            std::exit(1);
        }
        std::printf("| dense %-18s | %-7s | %6lld x %-6lld | %3d tok | int8 %7.1f us %6.1f TFLOP/s | f16+cuBLAS %7.1f us %6.1f TFLOP/s |\n",
                    what, std::string(gguf::type_traits(type).name).c_str(), static_cast<long long>(n_out),
                    static_cast<long long>(n_in), n_tok, ms_int8 * 1e3, flop / (ms_int8 * 1e9), ms_f16 * 1e3,
                    flop / (ms_f16 * 1e9));
    }
    cublasDestroy(h);
}

void bench_dequant(GgmlType type, int64_t n_in, int64_t n_rows) {
    const size_t rb = gguf::row_size(type, n_in);
    Buffer w(rb * n_rows), out(sizeof(uint16_t) * n_in * n_rows);
    fill_weights(type, n_in, w.p, rb * n_rows);
    const double ms = time_ms([&](int) { rc::dequantize_rows_f16(type, w.p, rb, n_in, n_rows, out.p, nullptr); }, 20);
    std::printf("| dequantize_rows_f16      | %-7s | %6lld x %-6lld |       | %8.1f us | %7.0f GB/s f16 out |\n",
                std::string(gguf::type_traits(type).name).c_str(), static_cast<long long>(n_rows), static_cast<long long>(n_in),
                ms * 1e3, 2.0 * n_in * n_rows / (ms * 1e6));
}

}  // namespace

int main(int argc, char** argv) {
    const int device = argc > 1 ? std::atoi(argv[1]) : 0;
    const bool decode_only = argc > 2 && std::string(argv[2]) == "decode";
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        std::fprintf(stderr, "error: no CUDA device\n");
        return 1;
    }
    if (device < 0 || device >= n) {
        std::fprintf(stderr, "error: device %d does not exist (%d found)\n", device, n);
        return 1;
    }
    ok(cudaSetDevice(device), "cudaSetDevice");
    cudaDeviceProp prop{};
    ok(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    std::printf("device %d: %s, %d SMs\n\n", device, prop.name, prop.multiProcessorCount);
    std::printf("| kernel                   | type    | rows x cols     | batch | time        | speed |\n");
    std::printf("|---|---|---|---|---|---|\n");
    try {
        rc::prepare_device_tables();
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::IQ4_XS, GgmlType::MXFP4}) {
            bench_experts(t, 2048, 768, 8, "gate/up");
            bench_experts(t, 768, 2048, 1, "down");
        }
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
            for (int n_tok : {1, 8}) bench_dense(t, 2048, 4096, n_tok, "attention q");
            bench_dense(t, 2048, 512, 1, "attention k/v");
            bench_dense(t, 4096, 2048, 1, "attention o");
        }
        for (int n_tok : {1, 4}) bench_dense(GgmlType::Q6_K, 2048, 151936, n_tok, "output");
        bench_grouping();
        if (decode_only) {
            ok(cudaDeviceSynchronize(), "final synchronisation");
            return 0;
        }
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0}) {
            bench_mmq_ids(t, 2048, 768, "gate/up");
            bench_mmq_ids(t, 768, 2048, "down");
        }
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) bench_dequant(t, 2048, 768 * 16);
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
            bench_dense_prefill(t, 2048, 4096, "attention q");
            bench_dense_prefill(t, 2048, 512, "attention k/v");
            bench_dense_prefill(t, 4096, 2048, "attention o");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    ok(cudaDeviceSynchronize(), "final synchronisation");
    return 0;
}
