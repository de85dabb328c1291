// gpu_info.h's facts through the CUDA runtime (device properties, free memory, and bandwidth measured with
// pinned-memory copies and the streaming-read kernel of stream_read.cu), for the CUDA module's entry
// (module.cpp): the runtime reaches them through the module once it is loaded.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>

#include "cuda/gpu_info_cuda.h"
#include "cuda/stream_read.h"
#include "runtime/error.h"

namespace runtime::cuda {

namespace {

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) throw Error(std::string(what) + ": " + cudaGetErrorString(status));
}

std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

struct DeviceBuffer {
    void* p = nullptr;
    ~DeviceBuffer() { cudaFree(p); }
};
struct HostBuffer {
    void* p = nullptr;
    ~HostBuffer() { cudaFreeHost(p); }
};
struct Events {
    cudaEvent_t start = nullptr, stop = nullptr;
    Events() {
        check(cudaEventCreate(&start), "cudaEventCreate");
        check(cudaEventCreate(&stop), "cudaEventCreate");
    }
    ~Events() {
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
    }
    template <typename F>
    double best_seconds(int reps, F&& work) {
        float best_ms = 1e30f;
        for (int r = 0; r < reps; ++r) {
            check(cudaEventRecord(start), "cudaEventRecord");
            work();
            check(cudaGetLastError(), "kernel launch");
            check(cudaEventRecord(stop), "cudaEventRecord");
            check(cudaEventSynchronize(stop), "cudaEventSynchronize");
            float ms = 0;
            check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
            best_ms = std::min(best_ms, ms);
        }
        return best_ms / 1e3;
    }
};

}  // namespace

std::string library_versions() {
    int runtime_version = 0;
    cudaRuntimeGetVersion(&runtime_version);
    int major = 0, minor = 0;
    cublasGetProperty(MAJOR_VERSION, &major);
    cublasGetProperty(MINOR_VERSION, &minor);
    return "CUDA runtime " + version_text(runtime_version) + ", cuBLAS " + std::to_string(major) + "." +
           std::to_string(minor);
}

std::vector<GpuInfo> query_gpus(std::string* why) {
    int count = 0;
    if (const cudaError_t status = cudaGetDeviceCount(&count); status != cudaSuccess) {
        if (why) *why = std::string("no CUDA device: ") + cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return {};
    }
    std::vector<GpuInfo> gpus;
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        check(cudaGetDeviceProperties(&prop, i), "cudaGetDeviceProperties");
        GpuInfo g;
        g.device = Device::cuda(i);
        g.name = prop.name;
        g.compute_major = prop.major;
        g.compute_minor = prop.minor;
        g.multiprocessors = prop.multiProcessorCount;
        g.total_bytes = prop.totalGlobalMem;
        size_t free_bytes = 0, total_bytes = 0;
        check(cudaSetDevice(i), "cudaSetDevice");
        check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
        g.free_bytes = free_bytes;
        gpus.push_back(std::move(g));
    }
    if (gpus.empty() && why) *why = "the CUDA driver reports no device";
    return gpus;
}

GpuBandwidth measure_bandwidth(int ordinal, uint64_t bytes) {
    check(cudaSetDevice(ordinal), ("CUDA" + std::to_string(ordinal)).c_str());
    bytes = std::max<uint64_t>(bytes / 16 * 16, 16);
    DeviceBuffer device, sums;
    HostBuffer host;
    constexpr int kBlocks = 1024, kThreads = 256, kReps = 5;
    check(cudaMalloc(&device.p, bytes), "cudaMalloc");
    check(cudaMalloc(&sums.p, kBlocks * sizeof(float)), "cudaMalloc");
    check(cudaMallocHost(&host.p, bytes), "cudaMallocHost");
    std::fill_n(static_cast<unsigned char*>(host.p), bytes, 0);
    check(cudaMemset(device.p, 0, bytes), "cudaMemset");

    Events ev;
    const double gb = static_cast<double>(bytes) / 1e9;
    GpuBandwidth bw;
    bw.host_to_device_gbs =
        gb / ev.best_seconds(kReps, [&] { cudaMemcpyAsync(device.p, host.p, bytes, cudaMemcpyHostToDevice); });
    bw.device_to_host_gbs =
        gb / ev.best_seconds(kReps, [&] { cudaMemcpyAsync(host.p, device.p, bytes, cudaMemcpyDeviceToHost); });
    bw.device_read_gbs = gb / ev.best_seconds(kReps, [&] {
        launch_stream_read(device.p, bytes / 16, static_cast<float*>(sums.p), kBlocks, kThreads);
    });
    return bw;
}

}  // namespace runtime::cuda
