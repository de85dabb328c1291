// gpu_info.h and the backend factory of a CUDA build: the CUDA backend is a shared module,
// libgguf-cuda.so (cuda_module.h), opened here the first time a GPU is asked for. A run that asks for no
// GPU never loads it, so it maps neither the CUDA runtime nor cuBLAS; a machine without CUDA libraries
// gets the loader's reason instead of a failure to start.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cuda_module.h"
#include "runtime/backend.h"
#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace runtime {

namespace {

namespace fs = std::filesystem;

struct Loaded {
    const CudaModule* module = nullptr;
    std::string error;  // why module is null
};

// Where the module may be, in order: $GGUF_CUDA_MODULE alone when set; beside the executable; in ../lib
// from it (an installed tree, the device kit); the build tree's lib/ folder, where CMake puts it.
std::vector<fs::path> candidates() {
    if (const char* env = std::getenv("GGUF_CUDA_MODULE"); env && *env) return {env};
    std::vector<fs::path> out;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        out.push_back(exe.parent_path() / kCudaModuleFile);
        out.push_back(exe.parent_path().parent_path() / "lib" / kCudaModuleFile);
    }
#ifdef GGUF_CUDA_MODULE_DIR
    out.push_back(fs::path(GGUF_CUDA_MODULE_DIR) / kCudaModuleFile);
#endif
    return out;
}

Loaded open_module() {
    Loaded r;
    std::string looked;
    for (const fs::path& path : candidates()) {
        looked += (looked.empty() ? "" : ", ") + path.string();
        if (!fs::exists(path)) continue;
        // RTLD_NOW: a missing CUDA library is reported here, not as a crash at the first call
        void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            r.error = "cannot load " + path.string() + ": " + ::dlerror();
            return r;
        }
        using Entry = const CudaModule* (*)();
        auto entry = reinterpret_cast<Entry>(::dlsym(handle, kCudaModuleEntry));
        const CudaModule* m = entry ? entry() : nullptr;
        if (!m || m->layout != cuda_module_layout()) {
            // not unloaded: its static destructors would run while nothing uses it anyway
            r.error = path.string() + " is not the CUDA module of this build (rebuild it with the program)";
            return r;
        }
        r.module = m;
        return r;
    }
    r.error = std::string(kCudaModuleFile) + " not found (looked in " + looked + ")";
    return r;
}

// Opened once per process, on first use.
const Loaded& loaded() {
    static std::once_flag once;
    static Loaded r;
    std::call_once(once, [] { r = open_module(); });
    return r;
}

}  // namespace

bool built_with_cuda() { return true; }

std::string cuda_library_versions() {
    const Loaded& l = loaded();
    return l.module ? l.module->library_versions() : "CUDA module not loaded: " + l.error;
}

std::vector<GpuInfo> query_gpus(std::string* why) {
    const Loaded& l = loaded();
    if (!l.module) {
        if (why) *why = "the CUDA backend is unavailable: " + l.error;
        return {};
    }
    return l.module->query_gpus(why);
}

GpuBandwidth measure_gpu_bandwidth(int ordinal, uint64_t bytes) {
    const Loaded& l = loaded();
    if (!l.module) throw Error("the CUDA backend is unavailable: " + l.error);
    return l.module->measure_bandwidth(ordinal, bytes);
}

std::vector<std::unique_ptr<Backend>> create_backends(const std::vector<Device>& gpus) {
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::make_unique<cpu::CpuBackend>());
    if (gpus.empty()) return backends;  // the CPU alone: the module stays unloaded
    const Loaded& l = loaded();
    if (!l.module) throw Error("the CUDA backend is unavailable: " + l.error);
    for (const Device& d : gpus) backends.push_back(l.module->make_backend(d.index));
    return backends;
}

std::vector<Device> available_gpus() {
    std::vector<Device> out;
    for (const GpuInfo& g : query_gpus()) out.push_back(g.device);
    return out;
}

}  // namespace runtime
