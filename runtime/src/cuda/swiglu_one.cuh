// SwiGLU of one element, shared by the elementwise kernel and the fused expert mat-vec so that both
// compute what cpu::swiglu computes: g / (1 + e^-g) * u, the exponent clamped to [-87, 88], each step
// rounded (no fused multiply-add).
#pragma once

#include <cuda_runtime.h>

namespace runtime::cuda {

__device__ __forceinline__ float swiglu_one(float g, float u) {
    const float e = expf(fminf(fmaxf(-g, -87.f), 88.f));
    return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.f, e)), u);
}

}  // namespace runtime::cuda
