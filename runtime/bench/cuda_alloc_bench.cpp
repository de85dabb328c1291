// cuda-alloc-bench: what cudaMalloc takes from the device for allocations of one size: for each size, 64
// allocations (4 for the largest), with the device's used memory (cudaMemGetInfo) before and after. Why
// the runtime carves weights, the KV cache and scratch from one allocation each (docs/benchmarks.md,
// session 9): above 1 MiB every allocation is rounded up to whole 2 MiB pages.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <vector>

namespace {

size_t used_bytes() {
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) return 0;
    return total - free;
}

}  // namespace

int main() {
    if (cudaFree(nullptr) != cudaSuccess) {
        std::fprintf(stderr, "error: no usable CUDA device\n");
        return 1;
    }
    std::printf("CUDA context: %.1f MiB of device memory in use\n", static_cast<double>(used_bytes()) / (1 << 20));
    const size_t sizes[] = {512, 8192, 65536, 655360, 1048576, 1200000, 2097152, 2200000, 4718592, 113246208};
    for (const size_t size : sizes) {
        const int n = size > (64u << 20) ? 4 : 64;
        const size_t before = used_bytes();
        std::vector<void*> blocks(static_cast<size_t>(n), nullptr);
        for (void*& p : blocks) {
            if (cudaMalloc(&p, size) != cudaSuccess) {
                std::fprintf(stderr, "error: cudaMalloc of %zu bytes failed\n", size);
                return 1;
            }
        }
        const size_t taken = used_bytes() - before;
        const double asked = static_cast<double>(size) * n;
        std::printf("%3d x %10zu B: asked %9.2f MiB, took %9.2f MiB (x%.2f)\n", n, size, asked / (1 << 20),
                    static_cast<double>(taken) / (1 << 20), static_cast<double>(taken) / asked);
        for (void* p : blocks) cudaFree(p);
    }
    return 0;
}
