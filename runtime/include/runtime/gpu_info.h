// What this machine's GPUs offer: the facts placement decisions rest on (memory free per device, how
// fast weights cross the bus and how fast the device reads its own memory), and `gguf-run devices`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/device.h"

namespace runtime {

struct GpuInfo {
    Device device;
    std::string name;
    int compute_major = 0;
    int compute_minor = 0;
    int multiprocessors = 0;
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;
};

struct GpuBandwidth {
    double host_to_device_gbs = 0;  // pinned host memory to the device
    double device_to_host_gbs = 0;
    double device_read_gbs = 0;  // a kernel streaming through device memory
};

// True when this build has the CUDA code (nvcc was found at configure time).
bool built_with_cuda();
// The CUDA toolkit libraries this build links, e.g. "CUDA runtime 13.0, cuBLAS 13.0"; "" without CUDA.
std::string cuda_library_versions();
// The CUDA devices present. Empty for a CPU-only build or when no driver or device is found; `why`
// (when given) then says which.
std::vector<GpuInfo> query_gpus(std::string* why = nullptr);
// Measures the device's bandwidths with transfers and reads of `bytes` (best of a few repetitions).
// Throws runtime::Error on a CPU-only build or when the device cannot allocate `bytes`.
GpuBandwidth measure_gpu_bandwidth(int ordinal, uint64_t bytes = 256ull << 20);

}  // namespace runtime
