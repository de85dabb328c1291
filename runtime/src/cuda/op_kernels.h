// The transformer-block kernels of the CUDA backend other than the matrix products: norms, RoPE, KV-cache
// stores, attention, MoE routing and the element-wise steps. Each computes the same function as the CPU
// reference (runtime/src/cpu/ops.cpp, cpu_backend.cpp, moe.cpp, kv_cache.cpp); tests/runtime/cuda_ops_test.cpp
// holds them to it. All pointers are device pointers; every call only enqueues work on `stream` and throws
// runtime::Error when the launch fails or the shape is unsupported.
//
// CUDA graphs: decode is captured once and replayed, so kernel arguments are frozen at capture. Whatever
// changes per token (the batch's first position) is read from device memory, `pos0_dev`: token t of the
// batch is at position *pos0_dev + t. Grids are sized for n_ctx and blocks past the live length exit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/attention_split.h"
#include "gguf/types.h"

namespace runtime::cuda {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w for n_rows rows of n floats (w null: no scale). The sum of
// squares is taken in double, as on the CPU. y may alias x. Where xq is given (n a multiple of 32), the
// rows of y are also written there as quantize_rows_q8_1(y, n) would (bit for bit): the next mat-vec
// needs no quantization launch.
void rms_norm(const float* x, int64_t ldx, const float* w, float* y, int64_t ldy, int64_t n, int n_rows, float eps,
              cudaStream_t stream, void* xq = nullptr);

// The residual add fused with the next norm: x[r] += y[r] (written back), then out[r] = rms_norm(x[r]) * w
// as rms_norm computes it (w may be null). One pass over the row instead of two launches. xq as rms_norm.
void add_rms_norm(float* x, int64_t ldx, const float* y, int64_t ldy, const float* w, float* out, int64_t ldo,
                  int64_t n, int n_rows, float eps, cudaStream_t stream, void* xq = nullptr);

// The Q/K norms: rms_norm of every head (head_dim floats, heads contiguous within a row) in place, with the
// same head_dim weights for each head. head_dim <= 1024.
void rms_norm_heads(float* x, int64_t ldx, const float* w, int n_tok, int n_head, int head_dim, float eps,
                    cudaStream_t stream);

// Rotates the first n_rot dimensions of each of n_head heads (head_dim apart) of n_tok rows in place; token t
// is at position *pos0_dev + t. Pairs (2i, 2i+1) when !neox (RopeMode::Adjacent), (i, i + n_rot/2) when neox.
// inv_freq holds n_rot/2 DOUBLE inverse frequencies (scaling and rope_freqs factors folded in, as
// Context::inv_freq_): the angle pos * inv_freq is taken in double and its cos/sin rounded to float, exactly
// as context.cpp does. (A float inv_freq would be off by up to 3e-8 relative, i.e. up to 1e-3 rad at
// position 32768: visibly different from the CPU. Hence double, the one deliberate change to the API.)
void rope(float* x, int64_t ldx, int n_tok, int n_head, int head_dim, int n_rot, bool neox, const int32_t* pos0_dev,
          const double* inv_freq, cudaStream_t stream);

// The Q/K norms (when q_norm / k_norm are not null) and RoPE of both Q (n_head heads a row) and K
// (n_head_kv heads) in one launch, each head as rms_norm_heads then rope would leave it (bit for bit).
// head_dim <= 1024.
void norm_rope_qk(float* q, int64_t ldq, int n_head, const float* q_norm, float* k, int64_t ldk, int n_head_kv,
                  const float* k_norm, int n_tok, int head_dim, float eps, int n_rot, bool neox,
                  const int32_t* pos0_dev, const double* inv_freq, cudaStream_t stream);

// Writes n_tok rows of n floats (ld_src apart) into cache rows *pos0_dev + t (row_bytes apart) as `type`:
// F32, F16 (round to nearest even), Q8_0 or Q4_0 (bit-exact with libquant's quantize_rows without imatrix).
void kv_store(gguf::GgmlType type, const float* src, int64_t ld_src, int n_tok, int64_t n, void* cache,
              size_t row_bytes, const int32_t* pos0_dev, cudaStream_t stream);

// Both stores of a layer in one launch: keys (n_k floats a row) and values (n_v), each as kv_store would.
void kv_store_kv(gguf::GgmlType type_k, const float* k, int64_t ld_k, int64_t n_k, void* k_cache, size_t k_row_bytes,
                 gguf::GgmlType type_v, const float* v, int64_t ld_v, int64_t n_v, void* v_cache, size_t v_row_bytes,
                 int n_tok, const int32_t* pos0_dev, cudaStream_t stream);

// norm_rope_qk, then kv_store_kv of the rotated keys and of v, in one launch (bit for bit those two
// calls): Q and K heads of head_dim floats normalised and rotated in place, K and V (head_dim each, n_head_kv
// heads) written to cache rows *pos0_dev + t.
void norm_rope_qk_store(float* q, int64_t ldq, int n_head, const float* q_norm, float* k, int64_t ldk, int n_head_kv,
                        const float* k_norm, const float* v, int64_t ldv, int n_tok, int head_dim, float eps, int n_rot,
                        bool neox, const int32_t* pos0_dev, const double* inv_freq, gguf::GgmlType type_k,
                        void* k_cache, size_t k_row_bytes, gguf::GgmlType type_v, void* v_cache, size_t v_row_bytes,
                        cudaStream_t stream);

// Causal attention over the cache, flash-attention style (online softmax), with GQA: query head h reads KV
// head h / (n_head / n_head_kv). Token t (query row q + t*ldq, head h at h*head_dim_k) attends to positions
// 0 .. *pos0_dev + t of the cache (which must already hold this batch's keys and values); output row
// out + t*ldo, head h at h*head_dim_v. A cache row holds all KV heads, head g at g * row_size(type, head_dim).
// Cache types F32, F16, Q8_0, Q4_0; head_dim_k == head_dim_v in {32, 64, 128, 256}. Scores are
// scale * q.k, as on the CPU. Few tokens (<= kAttentionSplitMaxTokens) split the positions over blocks and
// combine the parts (scratch must hold attention_scratch_bytes); more tokens use one block per query tile.
// *pos0_dev + n_tok must not exceed n_ctx. Where out_q8 is given (F32 kernel only), the output rows are
// also written there as quantize_rows_q8_1(out, n_head * head_dim_v) would, bit for bit: the output
// projection needs no quantization launch.
//
// Two kernels: F32 computes in f32 on the CUDA cores (matches the CPU to ~1e-6); TensorCore computes the
// products on the tensor cores (compute capability 8.0 and later) from queries, keys, values and
// probabilities each split into two f16 values (hi + lo: 22 bits), with f32 accumulation and softmax
// (~1e-6 relative as well; never splits the positions, so it wants batches; operands below 65504).
// Auto takes TensorCore for batches of more than kAttentionSplitMaxTokens tokens where the device has it,
// F32 otherwise.
enum class AttentionKernel { Auto, F32, TensorCore };
void attention(const float* q, int64_t ldq, const void* k_cache, gguf::GgmlType tk, size_t k_row_bytes,
               const void* v_cache, gguf::GgmlType tv, size_t v_row_bytes, int n_tok, int n_head, int n_head_kv,
               int head_dim_k, int head_dim_v, float scale, const int32_t* pos0_dev, int n_ctx, float* out,
               int64_t ldo, void* scratch, cudaStream_t stream, AttentionKernel kernel = AttentionKernel::Auto,
               void* out_q8 = nullptr);

// MoE router: per token, probabilities over n_expert logits (softmax over all experts, or an independent
// sigmoid each), the k most probable (ties to the lower index), and their weights: renormalised to sum 1
// when `normalize` (the sum clamped below at 2^-14, as moe.cpp), then multiplied by `scale` unless it is
// 0 or 1. ids and weights are [n_tok][k]. n_expert <= 512, k <= 32.
void route_topk(const float* logits, int64_t ld, int n_tok, int n_expert, int k, bool sigmoid, bool normalize,
                float scale, int32_t* ids, float* weights, cudaStream_t stream);

// The router mat-vec and route_topk in one launch, for decode (1..8 tokens) with f32 router weights: logits
// [t][e] = W[e] . x[t] (W n_expert rows of n_in floats, written to logits, rows ld apart), then, by the last
// block to finish, route_topk of those logits. counter: one int of device memory, zero before the call and
// left zero (allocate it zeroed once).
void router_topk_f32(const float* W, int64_t n_in, const float* x, int64_t ldx, int n_tok, int n_expert, int k,
                     bool sigmoid, bool normalize, float scale, float* logits, int64_t ld, int32_t* counter,
                     int32_t* ids, float* weights, cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i] for n contiguous values (out may alias gate or up).
void swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);
// The same over n_rows rows of n values with their own strides (out may alias gate or up).
void swiglu_rows(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out, int64_t ldo, int64_t n,
                 int n_rows, cudaStream_t stream);
// x[r][i] += y[r][i] for n_rows rows of n.
void add_rows(float* x, int64_t ldx, const float* y, int64_t ldy, int64_t n, int n_rows, cudaStream_t stream);
// y[r][i] += b[i] for n_rows rows of n.
void add_bias(float* y, int64_t ldy, const float* b, int64_t n, int n_rows, cudaStream_t stream);
// x[t][i] += sum_j weights[t*k + j] * down[(t*k + j) * ld_down + i], the terms added in order j = 0..k-1
// (each product rounded, as moe.cpp).
void moe_weighted_sum(float* x, int64_t ldx, const float* down, int64_t ld_down, const float* weights, int n_tok,
                      int k, int64_t n, cudaStream_t stream);

// Embedding lookup: out row t = the table row ids_dev[t] (row_bytes apart) dequantized to n floats, as
// libquant's dequantize_row does (bit for bit), for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K
// and Q6_K tables; other types (Q2_K, Q3_K, the IQ and ternary families, MXFP4) are not supported here
// (get_rows_supported says so): look those rows up on the host. The ids must be valid (the caller checks
// them on the host, as Context::decode does).
bool get_rows_supported(gguf::GgmlType type);
void get_rows_f32(gguf::GgmlType type, const void* table, size_t row_bytes, const int32_t* ids_dev, int n_tok,
                  int64_t n, float* out, int64_t ldo, cudaStream_t stream);

}  // namespace runtime::cuda
