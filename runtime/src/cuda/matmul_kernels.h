// The quantized matrix kernels of the CUDA backend, callable from host C++: activations quantized to
// int8 once per row, mat-vec products for decode (dense and by expert id), dequantization to f16 for
// cuBLAS, and the grouped expert matmul for MoE prefill. Weight rows are ggml blocks exactly as in the
// GGUF file (quant/blocks.h); every pointer argument is device memory unless it says otherwise.
// Every function enqueues work on `stream` and returns at once (no host synchronisation, so all of it
// can be captured in a CUDA graph once prepare_device_tables has run on the device); a launch error
// throws runtime::Error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace runtime::cuda {

using gguf::GgmlType;

// --- int8 activations ----------------------------------------------------------------------------------

// 32 activations as x = d * qs, d = max|x| / 127 rounded to half; s = d * sum(qs) (half bits), so that
// formats with a minimum (Q4_1, Q5_1, Q4_K, Q5_K) apply it with one multiply per block.
struct BlockQ8_1 {
    uint16_t d, s;
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// Bytes of one quantized activation row of n elements (n a multiple of 32): n / 32 blocks, no padding.
size_t q8_1_row_bytes(int64_t n);

// The layout the tensor-core kernel (mmq_ids_mma) reads: the blocks of a row in groups of four, their
// (d, s) words first, then their 4 x 32 int8 values; 144 bytes, so every group starts 16-byte aligned
// and a tile's values load 16 bytes at a time. A row of n elements takes ceil(n / 128) groups; blocks
// past n / 32 are zeros (d = 0).
struct BlockQ8_1Quad {
    uint32_t ds[4];
    int8_t qs[128];
};
static_assert(sizeof(BlockQ8_1Quad) == 144);
size_t q8_1_quad_row_bytes(int64_t n);

// n_rows rows of n floats, ld_x floats apart, to rows q8_1_row_bytes(n) apart at xq.
void quantize_rows_q8_1(const float* x, int64_t ld_x, int64_t n, int64_t n_rows, void* xq, cudaStream_t stream);
// The same for swiglu(gate, up) (contiguous rows of n), bit for bit what swiglu then quantize_rows_q8_1
// give, without the intermediate rows.
void swiglu_quantize_rows_q8_1(const float* gate, const float* up, int64_t n, int64_t n_rows, void* xq,
                               cudaStream_t stream);
// Both in the quad layout (rows q8_1_quad_row_bytes(n) apart): the same blocks, bit for bit.
void quantize_rows_q8_1_quads(const float* x, int64_t ld_x, int64_t n, int64_t n_rows, void* xq, cudaStream_t stream);
void swiglu_quantize_rows_q8_1_quads(const float* gate, const float* up, int64_t n, int64_t n_rows, void* xq,
                                     cudaStream_t stream);

// --- decode: quantized mat-vec -------------------------------------------------------------------------

// Types mmvq / mmvq_ids / mmq_ids take: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS MXFP4.
bool mmvq_supported(GgmlType type);

// y[t * ldy + r] = dot(weight row r, activation row t) for r < n_out, t < n_tok (1..8). W holds n_out
// rows row_bytes apart (row_bytes a multiple of the block size); xq holds n_tok rows from
// quantize_rows_q8_1(n_in). Each weight row is read once for all n_tok tokens.
void mmvq(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_out, const void* xq, int n_tok,
          float* y, int64_t ldy, cudaStream_t stream);

// Several matrices of one type on the same activations in one launch (Q, K and V; gate and up): for each
// m < n_mats (1..kMmvqMaxMats), mmvq(type, mats[m].W, mats[m].row_bytes, n_in, mats[m].n_out, xq, n_tok,
// mats[m].y, mats[m].ldy), bit for bit. `mats` is read on the host.
inline constexpr int kMmvqMaxMats = 4;
struct MmvqMat {
    const void* W;
    size_t row_bytes;
    int64_t n_out;
    float* y;
    int64_t ldy;
};
void mmvq_multi(GgmlType type, const MmvqMat* mats, int n_mats, int64_t n_in, const void* xq, int n_tok,
                cudaStream_t stream);

// MoE decode: for each slot s < n_slots, y[s * ldy + r] = dot(row r of matrix ids[s], activation row
// s / x_group), matrix e at W + e * mat_stride. ids are read on the device (no host round trip); x_group
// is the number of slots sharing one activation row (top-k for gate/up, 1 for down).
void mmvq_ids(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
              const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy,
              cudaStream_t stream);
// Two matrix sets of one type and shape over the same slots in one launch (gate into y, up into y2):
// bit for bit two mmvq_ids calls.
void mmvq_ids_pair(GgmlType type, const void* W, const void* W2, size_t row_bytes, size_t mat_stride, int64_t n_in,
                   int64_t n_out, const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, float* y2,
                   int64_t ldy, cudaStream_t stream);
// The down projection with the weighted sum of each token's k slots: out[t * ldo + r] = sum over
// j = 0 .. k-1, in that order, of weights[t k + j] * dot(row r of matrix ids[t k + j], activation row
// t k + j), bit for bit mmvq_ids (x_group 1) then moe_weighted_sum into zeroed rows where k times the
// lanes per row fits 256 threads (top-8 always; beyond, the row's units are split over fewer lanes and
// the dot products may differ in their last bits). k <= 32.
inline constexpr int kMmvqWeightedMaxK = 32;
void mmvq_ids_weighted(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                       const void* xq, const int32_t* ids, const float* weights, int n_tok, int k, float* out,
                       int64_t ldo, cudaStream_t stream);

// The mat-vecs (mmvq, mmvq_multi) copy a block's weight rows into shared
// memory with wide loads first where their alignment allows (stage_rows.cuh); results are the same bit for
// bit either way. Off unless GGUF_CUDA_STAGE=1 (not yet shown to help on a device); this switch is for
// tests and benchmarks (process-wide).
void set_weight_staging(bool on);

// Float weights (F32, F16, BF16) times float activations x (rows ldx floats apart), in f32 arithmetic.
bool mmv_float_supported(GgmlType type);
void mmv_float(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_out, const float* x,
               int64_t ldx, int n_tok, float* y, int64_t ldy, cudaStream_t stream);
void mmv_float_ids(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                   const float* x, int64_t ldx, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy,
                   cudaStream_t stream);

// --- prefill: dequantization for cuBLAS ----------------------------------------------------------------

// Every type libquant dequantizes: the mmvq types, IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S TQ1_0
// TQ2_0, and F32 F16 BF16.
bool dequant_supported(GgmlType type);

// n_rows rows of n_in elements (row_bytes apart) to f16, rows n_in halves apart: bit-exact with
// quant::dequantize_row followed by rounding to nearest-even f16.
void dequantize_rows_f16(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_rows,
                         void* out_f16, cudaStream_t stream);

// The IQ grids live in device memory, copied from libquant's host tables on first use on each device.
// That copy cannot happen inside stream capture: call this once per device (with it current) before
// capturing a graph that dequantizes IQ1/IQ2/IQ3 types. Idempotent and thread-safe.
void prepare_device_tables();

// --- prefill: grouped expert matmul --------------------------------------------------------------------

// Groups n_tok * k routing slots by expert with a stable counting sort on the device (one thread block):
// ids (n_tok * k, token-major) -> expert_offsets (n_experts + 1: expert e's grouped slots are
// [offsets[e], offsets[e+1])), slot_rows (per grouped slot: its token, the activation row) and
// slot_of_group (per grouped slot: its index in ids, to scatter results back). Slots keep their order
// within an expert. Ids outside [0, n_experts) are dropped (they belong to no group).
void group_slots_by_expert(const int32_t* ids, int n_tok, int k, int n_experts, int32_t* expert_offsets,
                           int32_t* slot_rows, int32_t* slot_of_group, cudaStream_t stream);

// Tile shapes of mmq_ids_mma (rows x slots, elements per stage): Slots64 64 x 64, 256;
// Slots64Short 64 x 64, 128 (half the shared memory: more blocks per multiprocessor); Slots32 64 x 32,
// 256; Rows128 128 x 64, 128 (8 warps: each activation tile staged once for twice the rows);
// Rows128Paired 128 x 64, 128 with 4 warps of two 16-row tiles (each activation fragment read from shared
// memory once for both; Rows64Paired, 2 such warps, measured slower everywhere: docs/benchmarks.md).
enum class MmaTile { Slots64, Slots64Short, Slots32, Rows128, Rows128Paired };

// For each expert e and grouped slot g in [offsets[e], offsets[e+1]): y[g * ldy + r] = dot(row r of matrix
// e, activation row slot_rows[g]), r < n_out. max_per_expert bounds every expert's slot count (the grid
// is sized by it; n_tok is always enough). Devices of compute capability 8.0 and later run mmq_ids_mma
// (mmq_tensor_cores_available()), earlier ones mmq_ids_dp4a:
// - mmq_ids_mma: activations in the quad layout (quantize_rows_q8_1_quads); int8 tensor-core tiles
//   (mma.sync m16n8k32, m16n8k16 for Q3_K/Q6_K) of 64 rows x 64 or 32 slots (MmaTile); the weights are
//   read once per tile of slots of an expert, and the 8-slot mma tiles past an expert's count are
//   skipped. With y_rows, grouped slot g's results go to row y_rows[g] of y instead of row g
//   (slot_of_group: back in routing order, no scatter pass). The grid spans every slot tile
//   max_per_expert allows (0, the default) or grid_slot_tiles per expert, each block then looping over
//   every grid_slot_tiles-th tile of its expert (fewer, longer blocks).
// - mmq_ids_dp4a: activations as q8_1 blocks (quantize_rows_q8_1); tiles of 8 slots, each thread dotting
//   2-4 rows with dp4a; the weights are read once per 8 slots. The reference the tensor-core kernel can
//   be checked against, and the pre-Ampere path.
void mmq_ids_mma(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                 const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts, int max_per_expert,
                 float* y, int64_t ldy, cudaStream_t stream, MmaTile tile = MmaTile::Slots64,
                 const int32_t* y_rows = nullptr, int grid_slot_tiles = 0);
// Dense matrices of one type and width on the same n_tok activation rows (quad layout), one launch:
// matrix m's row r for token t into mats[m].y[t * ldy + r], bit for bit mmq_ids_mma with one expert
// holding every row (offsets {0, n_tok}, slot_rows the identity: the executor's tables) per matrix. Q, K and V
// of a prompt in one grid, so the short K and V no longer run on a fraction of the multiprocessors.
// With k_split 2 each slot tile's inner dimension is halved between two blocks, added into the zeroed y
// (a + b: the same bits in either order, so runs repeat exactly; not the bits of k_split 1). For short
// grids, e.g. a prompt's attention output (4096 -> 2048 rows: 256 blocks of 64 x 64 for 512 tokens).
void mmq_mma_dense(GgmlType type, const MmvqMat* mats, int n_mats, int64_t n_in, const void* xq, const int32_t* offsets,
                   const int32_t* slot_rows, int n_tok, cudaStream_t stream, MmaTile tile = MmaTile::Slots64Short,
                   int k_split = 1);
// The split mmq_mma_dense should take: 2 where the grid would hold fewer than two blocks per multiprocessor
// and n_in is at least 2048 (16 stages of 128), else 1.
int mma_dense_k_split(MmaTile tile, const MmvqMat* mats, int n_mats, int64_t n_in, int n_tok);
void mmq_ids_dp4a(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                  const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts, int max_per_expert,
                  float* y, int64_t ldy, cudaStream_t stream);
// Whether the current device runs mmq_ids_mma (compute capability 8.0 or later).
bool mmq_tensor_cores_available();

}  // namespace runtime::cuda
