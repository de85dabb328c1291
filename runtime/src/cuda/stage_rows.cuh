// Weight rows staged through shared memory for the mat-vec kernels. The units of a row are read by
// consecutive threads, each a handful of 2- or 4-byte words spread over a whole block (18 to 210 bytes),
// so a warp's load instruction touches up to 27 sectors and uses a few bytes of each: the kernels are
// bound by load instructions, not by memory. Where a block's rows are 16-byte aligned (row_bytes a
// multiple of 16, as for every K-quant row of 2048 or 4096 elements; or, for the chunk of rows a block
// takes, 8 or 4: Q6_K rows of 768 come 4 to a chunk of 2520 bytes), the block first copies its rows with
// the widest loads that alignment allows (every byte of each sector used by one instruction), then
// decodes them from shared memory.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace runtime::cuda {

// Most bytes a block stages (its rows are read directly above that).
inline constexpr size_t kStageMaxBytes = 32 * 1024;

// Whether staging is on: set_weight_staging (matmul_kernels.h), else GGUF_CUDA_STAGE=1 turns it on. Off
// by default until a device measurement shows it helps (the one MoE measurement so far showed no gain).
bool staging_enabled();

// The widest load (16, 8 or 4 bytes; 0: do not stage) that keeps every block's chunk of rows aligned:
// chunks of chunk_bytes start at W + k * mat_stride + b * chunk_bytes (mat_stride 0 for one matrix).
inline int stage_grain(const void* W, size_t chunk_bytes, size_t mat_stride) {
    if (!staging_enabled() || chunk_bytes > kStageMaxBytes) return 0;
    const uintptr_t a = reinterpret_cast<uintptr_t>(W);
    for (int g = 16; g >= 4; g /= 2) {
        if (a % g == 0 && chunk_bytes % g == 0 && mat_stride % g == 0) return g;
    }
    return 0;
}

template <class Word>
__device__ __forceinline__ void copy_words(const uint8_t* src, size_t n, uint8_t* dst, int tid, int n_threads) {
    const Word* s = reinterpret_cast<const Word*>(src);
    Word* d = reinterpret_cast<Word*>(dst);
#pragma unroll 4
    for (size_t i = tid; i < n; i += n_threads) d[i] = __ldcs(s + i);
}

// Copies `bytes` from src to dst (both aligned to `grain`, from stage_grain) with threads tid = 0 ..
// n_threads - 1, a last partial word byte by byte; the caller synchronises before reading dst. The loads
// stream past the caches (each byte is read once).
__device__ __forceinline__ void stage_copy(const uint8_t* src, size_t bytes, uint8_t* dst, int tid, int n_threads,
                                           int grain) {
    const size_t n = bytes / grain;
    switch (grain) {
        case 16: copy_words<uint4>(src, n, dst, tid, n_threads); break;
        case 8: copy_words<uint2>(src, n, dst, tid, n_threads); break;
        default: copy_words<unsigned int>(src, n, dst, tid, n_threads); break;
    }
    for (size_t i = n * grain + tid; i < bytes; i += n_threads) dst[i] = src[i];
}

}  // namespace runtime::cuda
