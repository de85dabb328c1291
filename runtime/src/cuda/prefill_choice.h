// Which kernels the CUDA executor runs for batches (prefill). The defaults are the measured best on the
// H200 (docs/benchmarks.md); GGUF_CUDA_PREFILL in the environment overrides them for A/B measurements of
// whole runs, e.g. GGUF_CUDA_PREFILL=attn=f32,dense=100000,tile=32:
//   attn=tc|f32     attention for batches: the tensor-core kernel (default) or the f32 one
//   dense=N         rows from which a dense quantized matmul dequantizes to f16 for cuBLAS (default 64);
//                   below, the int8 tensor-core tiles (mmq_ids with one expert)
//   tile=64|64s|32|128  mmq_ids_mma's tile shape for the experts (MmaTile: Slots64, Slots64Short,
//                   Slots32, Rows128)
//   moe=int8|auto   int8 (default): the grouped int8 kernel for every batch; auto: a batch whose slots
//                   fall on at most 16 experts, dense_rows or more each on average, multiplies them as
//                   dense matrices (f16 + cuBLAS) after one synchronisation (not yet run on a GPU)
#pragma once

#include "cuda/matmul_kernels.h"

namespace runtime::cuda {

struct PrefillChoice {
    bool f32_attention = false;
    int dense_rows = 64;
    MmaTile tile = MmaTile::Slots64;
    bool dense_experts = false;
};

// Parses a comma-separated list of the settings above over the defaults; an unknown key or value is an
// Error naming it. Empty or null: the defaults.
PrefillChoice parse_prefill_choice(const char* spec);

// The process's choice: GGUF_CUDA_PREFILL parsed once (a bad value is an Error at the first use).
const PrefillChoice& prefill_choice();

}  // namespace runtime::cuda
