// Programmatic dependent launch (compute capability 9.0 and later) for the kernels of the decode step.
//
// Inside a CUDA graph each kernel still waits for the previous one to finish and be retired before its
// blocks are launched: a gap of a microsecond or more per launch, ~20 launches per layer. With the
// launch attribute cudaLaunchAttributeProgrammaticStreamSerialization a kernel's blocks may be launched
// as soon as every block of the previous kernel has started (pdl_enter's launch_dependents), and each
// block waits in pdl_enter (griddepcontrol.wait) until the previous kernel has completed and its memory
// is visible. So the waiting is the same, only the launch overlaps. A kernel launched this way must call
// pdl_enter before it touches memory that an earlier kernel writes or reads (its weights, never written,
// may be prefetched before); pdl_launch only launches kernels that do. On a kernel launched the usual way
// (GGUF_CUDA_PDL unset, or an older device) both instructions return at once.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "cuda/pdl.h"

namespace runtime::cuda {

__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// A launch of `kernel` (which calls pdl_enter first) with or without the attribute:
// pdl_launch(kernel, grid, block, smem, stream)(args...).
template <class... P>
struct PdlLaunch {
    void (*kernel)(P...);
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    template <class... A>
    void operator()(A&&... args) const {
        if (pdl_enabled()) {
            cudaLaunchAttribute attr[1];
            attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
            attr[0].val.programmaticStreamSerializationAllowed = 1;
            cudaLaunchConfig_t cfg = {};
            cfg.gridDim = grid;
            cfg.blockDim = block;
            cfg.dynamicSmemBytes = smem;
            cfg.stream = stream;
            cfg.attrs = attr;
            cfg.numAttrs = 1;
            // an error stays on the thread for the caller's check_launch, as with <<<>>>
            (void)cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...);
        } else {
            kernel<<<grid, block, smem, stream>>>(static_cast<P>(args)...);
        }
    }
};

template <class... P>
PdlLaunch<P...> pdl_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr) {
    return {kernel, grid, block, smem, stream};
}

}  // namespace runtime::cuda
