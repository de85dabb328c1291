// One q8_1 activation block quantized by one warp (lane i holds element i): the formula of
// quantize_rows_q8_1, shared by every kernel that writes q8_1 rows so that they agree bit for bit.
#pragma once

#include <cuda_fp16.h>

#include "cuda/matmul_kernels.h"

namespace runtime::cuda {

// d = max|x| / 127 in f32, q = x / d rounded to nearest even; d and s = d * sum(q) stored as half.
// All 32 lanes of the warp must call it. Returns lane's q; every lane gets the (d, s) word.
struct Q8_1Lane {
    int8_t q;
    uint32_t ds;  // half d | half s << 16, as the first word of a BlockQ8_1
};
__device__ __forceinline__ Q8_1Lane quantize_lane_q8_1(float v) {
    float amax = fabsf(v);
    for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = amax / 127.f;
    const int q = d == 0.f ? 0 : __float2int_rn(__fdiv_rn(v, d));
    int sum = q;
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const uint32_t dh = __half_as_ushort(__float2half_rn(d));
    const uint32_t sh = __half_as_ushort(__float2half_rn(__fmul_rn(d, static_cast<float>(sum))));
    return {static_cast<int8_t>(q), dh | sh << 16};
}

__device__ __forceinline__ void quantize_block_q8_1(float v, int lane, BlockQ8_1& blk) {
    const Q8_1Lane r = quantize_lane_q8_1(v);
    blk.qs[lane] = r.q;
    if (lane == 0) *reinterpret_cast<uint32_t*>(&blk) = r.ds;
}

// The same block b of a row written into the quad layout (matmul_kernels.h, quantize_rows_q8_1_quads).
__device__ __forceinline__ void quantize_block_q8_1_quad(float v, int lane, int64_t b, BlockQ8_1Quad* row) {
    const Q8_1Lane r = quantize_lane_q8_1(v);
    BlockQ8_1Quad& quad = row[b / 4];
    quad.qs[(b % 4) * 32 + lane] = r.q;
    if (lane == 0) quad.ds[b % 4] = r.ds;
}

}  // namespace runtime::cuda
