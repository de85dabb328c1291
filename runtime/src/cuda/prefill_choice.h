// Which kernels the CUDA executor runs for batches (prefill). The defaults are what measured correct and
// fastest on the H200 with the synthetic Qwen3-30B-A3B (docs/benchmarks.md): the tensor-core attention
// (f32 accuracy from split f16 operands) for batches, since session 4's device calls: the same perplexity
// as the f32 kernel on a 4096-token chunk (6.0854e11 vs 6.0849e11, finite), runtime_cuda_backend_test
// passing with it, pp512 7406 -> 8150 and pp4096 4786 -> 7066 tok/s; the dense f16 + cuBLAS path stays
// off (with it the backend test's moe Q3_K_M drifted 10x further from the exact logits than the CPU);
// the int8 tiles of 64 rows x 64 slots with 128 elements a stage (Slots64Short) since session 5, once the
// activations load 16 bytes at a time (the quad layout): pp512 8391 (Slots64), 9121 (Rows128), 9867
// (Slots64Short), 8101 (Slots32) tok/s for the experts in one run. Session 6 (ncu, per kernel, one run each):
// the experts' down matmul (n_in 768, n_out 2048) in Rows128Paired tiles, 198 -> 171 us (Q6_K) and
// 143 -> 117 us (Q4_K) a layer, while the gate and up (127 -> 132 us) and every dense matmul are slower in
// them.
// GGUF_CUDA_PREFILL in the environment overrides them for A/B measurements of whole runs, e.g.
// GGUF_CUDA_PREFILL=attn=tc,dense=64,tile=32:
//   attn=tc|f32     attention for batches: the tensor-core kernel (split f16 operands; default) or the f32 one
//   dense=N|off     rows from which a dense quantized matmul dequantizes to f16 for cuBLAS (its activations
//                   rounded to f16); below, and always with off (the default), the int8 tensor-core tiles
//                   (mmq_ids with one expert)
//   tile=64|64s|32|128|128p  mmq_ids_mma's tile shape (MmaTile: Slots64, Slots64Short (default), Slots32,
//                   Rows128, Rows128Paired), for the dense matmuls and the experts' gate and up
//   down=(the same) the tile of the experts' down matmul (default 128p: Rows128Paired)
//   moe=int8|auto   int8 (default): the grouped int8 kernel for every batch; auto: a batch whose slots
//                   fall on at most 16 experts, dense_rows or more each on average, multiplies them as
//                   dense matrices (f16 + cuBLAS) after one synchronisation (not yet run on a GPU)
#pragma once

#include "cuda/matmul_kernels.h"

namespace runtime::cuda {

// dense_rows when the dense f16 path is off: no batch has that many rows.
inline constexpr int kDenseOff = 1 << 30;

struct PrefillChoice {
    bool f32_attention = false;
    int dense_rows = kDenseOff;
    MmaTile tile = MmaTile::Slots64Short;
    MmaTile down_tile = MmaTile::Rows128Paired;
    bool dense_experts = false;
};

// The executor's decode fusions (cuda_backend.cpp, docs/cuda_ops.md): the deferred residual add with the
// next norm, q8_1 rows written by norms and attention for the mat-vecs that follow, the Q-K norm and RoPE
// with the KV store, every weight of a type on the same rows in one mat-vec launch, the router's matmul
// with its top-k (router_topk_f32). On by default (measured faster on the H200: docs/benchmarks.md).
// From GGUF_CUDA_FUSE: unset, empty or 1 on, 0 off (each op its own launch); any other value is an Error.
struct FusionChoice {
    bool on = true;
};
FusionChoice parse_fusion_choice(const char* spec);
const FusionChoice& fusion_choice();

// Parses a comma-separated list of the settings above over the defaults; an unknown key or value is an
// Error naming it. Empty or null: the defaults.
PrefillChoice parse_prefill_choice(const char* spec);

// The process's choice: GGUF_CUDA_PREFILL parsed once (a bad value is an Error at the first use).
const PrefillChoice& prefill_choice();

}  // namespace runtime::cuda
