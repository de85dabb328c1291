// Which kernels the CUDA executor runs for batches (prefill). The defaults are what measured correct and
// fastest on the H200 with the synthetic Qwen3-30B-A3B (docs/benchmarks.md, device call 1 of 2026-11-30):
// the tensor-core attention and the dense f16 + cuBLAS path together gave NaN there (one of them turns
// activations beyond f16's range into infinities), f32 attention and int8 tiles gave pp512 7132 tok/s.
// GGUF_CUDA_PREFILL in the environment overrides them for A/B measurements of whole runs, e.g.
// GGUF_CUDA_PREFILL=attn=tc,dense=64,tile=32:
//   attn=tc|f32     attention for batches: the tensor-core kernel (f16 operands) or the f32 one (default)
//   dense=N|off     rows from which a dense quantized matmul dequantizes to f16 for cuBLAS (its activations
//                   rounded to f16); below, and always with off (the default), the int8 tensor-core tiles
//                   (mmq_ids with one expert)
//   tile=64|64s|32|128  mmq_ids_mma's tile shape for the experts (MmaTile: Slots64, Slots64Short,
//                   Slots32, Rows128)
//   moe=int8|auto   int8 (default): the grouped int8 kernel for every batch; auto: a batch whose slots
//                   fall on at most 16 experts, dense_rows or more each on average, multiplies them as
//                   dense matrices (f16 + cuBLAS) after one synchronisation (not yet run on a GPU)
#pragma once

#include "cuda/matmul_kernels.h"

namespace runtime::cuda {

// dense_rows when the dense f16 path is off: no batch has that many rows.
inline constexpr int kDenseOff = 1 << 30;

struct PrefillChoice {
    bool f32_attention = true;
    int dense_rows = kDenseOff;
    MmaTile tile = MmaTile::Slots64;
    bool dense_experts = false;
};

// Parses a comma-separated list of the settings above over the defaults; an unknown key or value is an
// Error naming it. Empty or null: the defaults.
PrefillChoice parse_prefill_choice(const char* spec);

// The process's choice: GGUF_CUDA_PREFILL parsed once (a bad value is an Error at the first use).
const PrefillChoice& prefill_choice();

}  // namespace runtime::cuda
