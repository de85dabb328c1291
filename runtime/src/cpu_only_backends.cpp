// The backends of a build without the CUDA backend: the CPU alone.
#include "cpu/cpu_backend.h"
#include "runtime/backend.h"

namespace runtime {

std::vector<std::unique_ptr<Backend>> create_backends(const std::vector<Device>& gpus) {
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::make_unique<cpu::CpuBackend>());
    (void)gpus;  // a CPU-only build plans no GPU device
    return backends;
}

std::vector<Device> available_gpus() { return {}; }

}  // namespace runtime
