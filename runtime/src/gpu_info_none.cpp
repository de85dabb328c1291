// gpu_info.h for builds without CUDA: there are no GPUs to ask.
#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace runtime {

bool built_with_cuda() { return false; }

std::string cuda_library_versions() { return {}; }

std::vector<GpuInfo> query_gpus(std::string* why) {
    if (why) *why = "this build has no CUDA support (configure with nvcc installed, or -DGGUF_CUDA=ON)";
    return {};
}

GpuBandwidth measure_gpu_bandwidth(int, uint64_t) {
    throw Error("this build has no CUDA support: cannot measure GPU bandwidth");
}

}  // namespace runtime
