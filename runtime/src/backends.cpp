// The backends compiled into this build.
#include "cpu/cpu_backend.h"
#include "runtime/backend.h"

namespace runtime {

std::vector<std::unique_ptr<Backend>> create_backends() {
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::make_unique<cpu::CpuBackend>());
    return backends;
}

std::vector<Device> available_gpus() { return {}; }

}  // namespace runtime
