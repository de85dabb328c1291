// The small data-movement kernels the CUDA executor needs around cuBLAS: f32 rows to f16, f16/bf16 to
// f32, rows gathered by an index list, rows scattered back to their slots.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace runtime::cuda {

// out (n_rows x n, contiguous, f16 bits) = x rows (ld_x floats apart), rounded to nearest.
void f32_to_f16_rows(const float* x, int64_t ld_x, int64_t n, int n_rows, uint16_t* out, cudaStream_t stream);
// out row i (contiguous, f16) = x row rows[i], for i < n_rows.
void gather_rows_f16(const float* x, int64_t ld_x, const int32_t* rows, int n_rows, int64_t n, uint16_t* out,
                     cudaStream_t stream);
// out[i] = the f16 or bf16 value src[i] (raw bits) widened to f32, i < n; `bf16` picks the format.
void widen_to_f32(const uint16_t* src, bool bf16, int64_t n, float* out, cudaStream_t stream);
// dst row dst_rows[i] = src row i, for i < n_rows.
void scatter_rows(const float* src, int64_t ld_src, const int32_t* dst_rows, int n_rows, int64_t n, float* dst,
                  int64_t ld_dst, cudaStream_t stream);

}  // namespace runtime::cuda
