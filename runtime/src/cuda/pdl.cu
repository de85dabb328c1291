// pdl.cuh's switch: read once from GGUF_CUDA_PDL (0 turns it off) and the current device's compute capability.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cuda/pdl.cuh"

namespace runtime::cuda {

namespace {

// -1: not decided yet, 0 off, 1 on
std::atomic<int> g_pdl{-1};

// Programmatic dependent launch needs compute capability 9.0 or later on the current device.
bool device_capable() {
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
}

}  // namespace

bool pdl_enabled() {
    int s = g_pdl.load(std::memory_order_relaxed);
    if (s < 0) {
        const char* v = std::getenv("GGUF_CUDA_PDL");
        s = !(v && std::strcmp(v, "0") == 0) && device_capable() ? 1 : 0;
        int expected = -1;
        g_pdl.compare_exchange_strong(expected, s);
        s = g_pdl.load(std::memory_order_relaxed);
    }
    return s == 1;
}

void set_pdl(bool on) { g_pdl.store(on && device_capable() ? 1 : 0); }

}  // namespace runtime::cuda
