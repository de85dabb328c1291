// The interface between the runtime and its CUDA module, libgguf-cuda.so: the CUDA backend, its kernels
// and the CUDA runtime and cuBLAS it links live in that shared module, which the runtime opens with dlopen
// the first time a GPU is asked for (cuda_module_loader.cpp). CPU-only work therefore never maps the CUDA
// libraries, which cost ~200 MiB of resident memory once loaded, and a CUDA build runs on a machine that
// has no CUDA libraries at all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/gpu_info.h"
#include "runtime/hparams.h"
#include "runtime/kv_cache.h"
#include "runtime/weights.h"

namespace runtime {

// What the module offers. Both sides pass C++ objects (strings, vectors, backends) through it: they are
// built together, by the same compiler, against the same libstdc++; `layout` catches a module left over
// from another build.
struct CudaModule {
    uint64_t layout = 0;
    std::string (*library_versions)() = nullptr;
    std::vector<GpuInfo> (*query_gpus)(std::string* why) = nullptr;
    GpuBandwidth (*measure_bandwidth)(int ordinal, uint64_t bytes) = nullptr;
    std::unique_ptr<Backend> (*make_backend)(int ordinal) = nullptr;
};

// The sizes of the types that cross the boundary, folded into one number: a module built from other
// headers than the program that opens it is refused instead of reading objects of another shape.
inline constexpr uint64_t cuda_module_layout() {
    uint64_t h = 1;
    for (uint64_t s : {sizeof(CudaModule), sizeof(GpuInfo), sizeof(GpuBandwidth), sizeof(HParams), sizeof(Weight),
                       sizeof(LayerWeights), sizeof(KvCache), sizeof(ContextShape), sizeof(Tensor), sizeof(Routing)}) {
        h = h * 1000003u + s;
    }
    return h;
}

inline constexpr const char* kCudaModuleFile = "libgguf-cuda.so";
inline constexpr const char* kCudaModuleEntry = "gguf_cuda_module";

}  // namespace runtime
