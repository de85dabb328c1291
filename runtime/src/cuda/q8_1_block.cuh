// One q8_1 activation block quantized by one warp (lane i holds element i): the formula of
// quantize_rows_q8_1, shared by every kernel that writes q8_1 rows so that they agree bit for bit.
#pragma once

#include <cuda_fp16.h>

#include "cuda/matmul_kernels.h"

namespace runtime::cuda {

// d = max|x| / 127 in f32, q = x / d rounded to nearest even; d and s = d * sum(q) stored as half.
// All 32 lanes of the warp must call it.
__device__ __forceinline__ void quantize_block_q8_1(float v, int lane, BlockQ8_1& blk) {
    float amax = fabsf(v);
    for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = amax / 127.f;
    const int q = d == 0.f ? 0 : __float2int_rn(__fdiv_rn(v, d));
    int sum = q;
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    blk.qs[lane] = static_cast<int8_t>(q);
    if (lane == 0) {
        blk.d = __half_as_ushort(__float2half_rn(d));
        blk.s = __half_as_ushort(__float2half_rn(__fmul_rn(d, static_cast<float>(sum))));
    }
}

}  // namespace runtime::cuda
