// The CUDA module's one exported symbol: the table through which the runtime, having opened
// libgguf-cuda.so with dlopen (cuda_module_loader.cpp), asks for devices and creates CUDA backends.
#include "cuda/cuda_backend.h"
#include "cuda/gpu_info_cuda.h"
#include "cuda_module.h"

namespace {

std::unique_ptr<runtime::Backend> make_backend(int ordinal) { return std::make_unique<runtime::cuda::CudaBackend>(ordinal); }

const runtime::CudaModule kModule{runtime::cuda_module_layout(), runtime::cuda::library_versions,
                                  runtime::cuda::query_gpus, runtime::cuda::measure_bandwidth, make_backend};

}  // namespace

extern "C" __attribute__((visibility("default"))) const runtime::CudaModule* gguf_cuda_module() { return &kModule; }
