// Helpers shared by the op kernels (device code): launch checks, half conversions, cache-row element loads.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "quant/blocks.h"
#include "runtime/error.h"
#include "cuda/swiglu_one.cuh"

namespace runtime::cuda::detail {

// Throws when the launch just made (or an earlier asynchronous failure) left an error on the thread.
inline void check_launch(const char* op) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) throw Error(std::string("CUDA ") + op + ": " + cudaGetErrorString(err));
}

inline void check(cudaError_t err, const char* op) {
    if (err != cudaSuccess) throw Error(std::string("CUDA ") + op + ": " + cudaGetErrorString(err));
}

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t float_to_half_bits(float f) { return __half_as_ushort(__float2half_rn(f)); }

// Elements d and d+1 (d even) of one cached head of `type`. The arithmetic is libquant's (q * d with the
// level as an int converted to float), so the values equal dequantize_row's bit for bit.
__device__ __forceinline__ float2 load_pair(int type, const uint8_t* head, int d) {
    switch (type) {
        case 0: return *reinterpret_cast<const float2*>(head + 4 * d);  // F32
        case 1: return __half22float2(*reinterpret_cast<const __half2*>(head + 2 * d));  // F16
        case 8: {  // Q8_0
            const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(head) + d / 32;
            const float s = half_bits_to_float(b->d);
            const int j = d % 32;
            return make_float2(__fmul_rn(static_cast<float>(b->qs[j]), s), __fmul_rn(static_cast<float>(b->qs[j + 1]), s));
        }
        default: {  // Q4_0: element j in the low nibble of byte j, j + 16 in the high nibble
            const auto* b = reinterpret_cast<const quant::BlockQ4_0*>(head) + d / 32;
            const float s = half_bits_to_float(b->d);
            const int j = d % 32;
            const int shift = j < 16 ? 0 : 4;
            const int q0 = (b->qs[j % 16] >> shift) & 0xF, q1 = (b->qs[(j + 1) % 16] >> shift) & 0xF;
            return make_float2(__fmul_rn(static_cast<float>(q0 - 8), s), __fmul_rn(static_cast<float>(q1 - 8), s));
        }
    }
}

}  // namespace runtime::cuda::detail
