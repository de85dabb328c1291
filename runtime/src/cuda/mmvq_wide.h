// The one-token mat-vec for Q4_K and Q6_K weights laid out for memory bandwidth (mmvq_wide.cu), taken by
// mmvq / mmvq_multi / mmvq_ids where it applies.
//
// Why: the unit kernels of mmvq.cu read the activations straight from global memory, each thread a
// word of a different 36-byte q8_1 block, so one load instruction of a warp touches 18 cache lines; with
// the weights' own 4-byte loads a warp needs ~430 L1 wavefronts per 1152-byte Q4_K row (n_in 2048), about
// 2.7 bytes per SM cycle: ~0.7 TB/s on an H200 whatever the number of launches (the MoE decode step
// measured ~1 TB/s fused or not, with or without staged weight rows). Here the activation row is staged
// once per block in shared memory and the weights come with 16-byte loads, 128 contiguous bytes per
// eight lanes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace runtime::cuda {

using gguf::GgmlType;

// Whether the wide kernels are on: set_mmvq_wide, else GGUF_CUDA_MMVQ=wide at first use. Off by default
// until a device run has timed them against the unit kernels.
bool mmvq_wide_enabled();
void set_mmvq_wide(bool on);

// Whether mmvq_wide takes this matrix (enabled, Q4_K or Q6_K, n_in a multiple of 256 up to 16384, rows
// and mat_stride aligned as the kernel loads them: 16 bytes for Q4_K, 4 for Q6_K).
bool mmvq_wide_takes(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in);

// One token: y[s * ldy + r] = dot(row r of matrix s, activation row s / x_group) for s < n_slots, matrix
// s = W + ids[s] * mat_stride (ids read on the device; a negative id gives zeros), or W itself without
// ids (n_slots 1). Returns false, launching nothing, where mmvq_wide_takes says no.
bool mmvq_wide(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
               const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy, cudaStream_t stream);

// The same for two matrix sets of one type and shape on the same activations (a MoE layer's gate and up)
// in one launch: ya from Wa, yb from Wb. Returns false, launching nothing, unless both fit.
bool mmvq_wide_pair(GgmlType type, const void* Wa, const void* Wb, size_t row_bytes, size_t mat_stride, int64_t n_in,
                    int64_t n_out, const void* xq, int x_group, const int32_t* ids, int n_slots, float* ya, float* yb,
                    int64_t ldy, cudaStream_t stream);

}  // namespace runtime::cuda
