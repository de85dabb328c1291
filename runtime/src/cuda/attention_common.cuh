// What the two attention kernels (attention.cu: f32 on the CUDA cores; attention_tc.cu: tensor-core tiles
// of split f16 operands for batches) share: their arguments, warp reductions and the shared-memory opt-in.
#pragma once

#include <atomic>
#include <cstdint>

#include "cuda/op_common.cuh"

namespace runtime::cuda::detail {

struct AttnArgs {
    const float* q;
    int64_t ldq;
    const uint8_t* k;
    int tk;
    size_t k_row_bytes, k_head_bytes;
    const uint8_t* v;
    int tv;
    size_t v_row_bytes, v_head_bytes;
    int n_tok, n_head, group;
    float scale;
    const int32_t* pos0_dev;
    int n_splits;  // blocks over the positions (1: no split, no combine)
    float* out;
    int64_t ldo;
    float* part_o;    // [split][token][head][D] unnormalised sums; null when not split
    float2* part_ml;  // [split][token][head] (running max, sum of exponentials)
    void* out_q8;     // BlockQ8_1 rows of n_head * D / 32 blocks for the output projection, or null
};

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Kernels using more than 48 KiB of shared memory must opt in, once per device: a host-side attribute, not
// a stream operation. Done at the kernel's first call on each device; a warm-up call before graph capture
// keeps it out of the capture.
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes, std::atomic<uint64_t>& done) {
    if (bytes <= 48 * 1024) return;
    int dev = 0;
    check(cudaGetDevice(&dev), "attention: cudaGetDevice");
    const uint64_t bit = uint64_t{1} << (dev % 64);
    if (done.load() & bit) return;
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
          "attention: shared memory attribute");
    done.fetch_or(bit);
}

// The tensor-core kernel for one head size (32, 64, 128 or 256), no split: a.n_splits must be 1. It runs
// on compute capability 8.0 and later (mma.sync m16n8k16), which attention_tc_available tells.
void launch_attention_tc(const AttnArgs& a, int head_dim, int n_rows, cudaStream_t stream);
bool attention_tc_available();

}  // namespace runtime::cuda::detail
