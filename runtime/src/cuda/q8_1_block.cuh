// q8_1 activation blocks quantized by a warp (one block, or four): the formula of quantize_rows_q8_1,
// shared by every kernel that writes q8_1 rows so that they agree bit for bit.
#pragma once

#include <cuda_fp16.h>

#include "cuda/matmul_kernels.h"

namespace runtime::cuda {

// d = max|x| / 127 in f32, q = x / d rounded to nearest even; d and s = d * sum(q) stored as half.
// V values per lane (1 or 4), 32 / V lanes per block: lanes (32 / V) k .. (32 / V) (k + 1) - 1 hold block
// k of the warp's V blocks, each lane V consecutive values. All 32 lanes of the warp must call it.
// Returns the lane's V q values packed little-endian (the bytes of its consecutive qs) and its block's
// (d, s) word, as the first word of a BlockQ8_1.
struct Q8_1Part {
    uint32_t q;
    uint32_t ds;  // half d | half s << 16
};
template <int V>
__device__ __forceinline__ Q8_1Part quantize_part_q8_1(const float (&e)[V]) {
    static_assert(V == 1 || V == 4, "one or four values a lane");
    constexpr int kLanes = 32 / V;
    float amax = fabsf(e[0]);
#pragma unroll
    for (int i = 1; i < V; ++i) amax = fmaxf(amax, fabsf(e[i]));
    for (int off = kLanes / 2; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = amax / 127.f;
    uint32_t packed = 0;
    int sum = 0;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int q = d == 0.f ? 0 : __float2int_rn(__fdiv_rn(e[i], d));
        sum += q;
        packed |= (static_cast<uint32_t>(q) & 0xffu) << (8 * i);
    }
    for (int off = kLanes / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const uint32_t dh = __half_as_ushort(__float2half_rn(d));
    const uint32_t sh = __half_as_ushort(__float2half_rn(__fmul_rn(d, static_cast<float>(sum))));
    return {packed, dh | sh << 16};
}

// One block by one warp, lane i holding element i.
__device__ __forceinline__ void quantize_block_q8_1(float v, int lane, BlockQ8_1& blk) {
    const float e[1] = {v};
    const Q8_1Part r = quantize_part_q8_1<1>(e);
    blk.qs[lane] = static_cast<int8_t>(r.q);
    if (lane == 0) *reinterpret_cast<uint32_t*>(&blk) = r.ds;
}

}  // namespace runtime::cuda
