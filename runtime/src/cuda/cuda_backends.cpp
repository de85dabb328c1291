// The backends of a CUDA build: the CPU's, plus one per GPU the plan puts weights on.
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "runtime/backend.h"
#include "runtime/gpu_info.h"

namespace runtime {

std::vector<std::unique_ptr<Backend>> create_backends(const std::vector<Device>& gpus) {
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::make_unique<cpu::CpuBackend>());
    for (const Device& d : gpus) backends.push_back(std::make_unique<cuda::CudaBackend>(d.index));
    return backends;
}

std::vector<Device> available_gpus() {
    std::vector<Device> out;
    for (const GpuInfo& g : query_gpus()) out.push_back(g.device);
    return out;
}

}  // namespace runtime
