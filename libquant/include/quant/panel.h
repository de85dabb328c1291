// Panels for batched matmuls (prompts): kPanelRows weight rows repacked so that the vector lanes run
// along the rows, then multiplied with up to kPanelCols activation rows per call. A panel holds the
// rows' quants widened to one byte each, four consecutive inputs of a row per 32-bit lane (the layout
// AVX-512 VNNI's vpdpbusd multiplies: unsigned weight bytes times signed activation bytes, four
// products summed into each row's lane), and the rows' scales laid out per sub-block as vectors.
// So a kernel step is one weight load feeding one multiply-add per token, with no horizontal sums and
// no unpacking in the loop over tokens: unpacking happens once, in pack(), and is shared by every
// token of the batch. Packing runs at the time of the matmul into a small per-thread buffer (a panel
// of 16 rows of 2048 inputs is 40-46 KB), so the weights keep their file layout everywhere else.
//
// Results are bit-identical to libquant's scalar reference dot of the type: the integer sums of each
// super-block are exact, and their floats are rounded in the reference's order (the SIMD dots of
// quant.h differ from both by float rounding only).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace quant {

inline constexpr int kPanelRows = 16;
inline constexpr int kPanelCols = 8;

struct PanelKernels {
    // Bytes of one panel of kPanelRows rows of n inputs (64-byte multiple).
    size_t (*bytes)(int64_t n);
    // Packs rows w, w + w_stride, ... (kPanelRows of them, n inputs each, the file's block layout)
    // into `panel` (64-byte aligned, bytes(n) long).
    void (*pack)(int64_t n, const void* w, size_t w_stride, void* panel);
    // out[c][r] = vec_dot(row r, a[c]) for r < kPanelRows, c < nc (1 <= nc <= kPanelCols); the
    // activation rows are quantized to vec_dot_type of the weights.
    void (*gemm)(int64_t n, const void* panel, const void* const* a, int nc, float* const* out);
};

// The panel kernels for weights of `type` on this CPU, or nullptr where there are none (then the
// tiles of gemm.h serve). Today: Q4_K, Q6_K and Q8_0, with AVX-512 VNNI (GGUF_SIMD=avx2 or
// GGUF_PANELS=off turns them off).
const PanelKernels* panel_kernels(gguf::GgmlType type);

}  // namespace quant
