// The CUDA runtime's answers to gpu_info.h's questions, inside the CUDA module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gpu_info.h"

namespace runtime::cuda {

// "CUDA runtime 13.0, cuBLAS 13.0"
std::string library_versions();
// The devices the driver reports; empty with `why` set when there is no driver or device.
std::vector<GpuInfo> query_gpus(std::string* why);
// Throws runtime::Error when the device cannot run the measurement.
GpuBandwidth measure_bandwidth(int ordinal, uint64_t bytes);

}  // namespace runtime::cuda
