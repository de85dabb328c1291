// MoE prefill on the tensor cores: the grouped expert matmul with int8 mma.sync (sm_80 and later).
//
// A thread block computes 64 weight rows x NS (64 or 32) grouped slots of one expert. Per stage of SB
// 32-element blocks (8 or 4) it
// decodes the weight rows' units into int8 blocks of 32 with their scales (mma_tiles.cuh) and copies the
// slots' q8_1 activation blocks into shared memory, with each half-block's exact integer sum; then each
// warp multiplies its 16 rows by the live slots (tiles of 8 up to the expert's count), one int8 mma per
// 32-element block (two of k16 where the format has a scale per 16), and scales the int32 results into
// f32 accumulators:
//   acc += d_act * (sc * dot) - (mn[0] * d_act * sum_a[0..15] + mn[1] * d_act * sum_a[16..31])
// (one minimum term with the block's whole sum where mn[0] == mn[1], every format but Q2_K).
// Weights are read from memory once per NS slots (once per expert at typical prefill sizes).
#include <algorithm>

#include "cuda/mma_tiles.cuh"

namespace runtime::cuda {

namespace {

// Blocks of 64 rows (4 warps) or 128 (8 warps: the activation tiles staged once for twice the rows).
// NS slots per block (32 or 64): 64 covers an expert's slots in one tile at typical prefill sizes (512
// tokens x top-8 of 128 experts: 32 on average), so its weights are decoded once; the 8-slot mma tiles
// past the expert's count are skipped. SB 32-element blocks per stage (8 or 4: 4 halves the shared
// memory, so twice the blocks fit on a multiprocessor to hide each other's loads).
template <int NS, int SB, int kRows>
struct Shared {
    static constexpr int kStride = SB * 8 + 4;  // row pitch in words: rows g = 0..7 hit different banks
    int w[kRows][kStride];
    float4 w_scmn[kRows][SB];  // (sc[0], sc[1], mn[0], mn[1]) per row and block: one 16-byte load
    int a[NS][kStride];
    // per block and slot (consecutive slots adjacent: a thread's two slots in one 16-byte load): d and
    // d * (sum of the int8 values), of the whole block or, where the minimums are per 16 (Q2_K), of its
    // first half; the second half's d * sum in a_s1
    float2 a_ds[SB][NS];
    float a_s1[SB][NS];
};

// What a block works on: one expert's matrix, kRows rows from row0, and the slots of the current tile.
struct TileArgs {
    const uint8_t* mat;
    size_t row_bytes;
    int64_t row0, n_out;
    int n_units;
    const BlockQ8_1* x;
    int64_t x_row_blocks;
    const int32_t* slot_rows;
    int first, count, live_tiles;  // grouped slots [first, first + count); 8-slot tiles holding them
};

// Stage u0 .. u0 + SB/kUnitBlocks - 1 (units of every row) into shared memory, by threads tid of n_threads:
// the weight rows' units decoded to int8 blocks and scales, the live slots' activation blocks with d and sums.
template <class U, int NS, int SB, int kRows>
__device__ __forceinline__ void stage_tile(Shared<NS, SB, kRows>& sh, const TileArgs& ta, int u0, int tid, int n_threads) {
    using T = tiles::Traits<U>;
    constexpr int kUnitBlocks = U::kElems / 32;  // 32-blocks per unit
    static_assert(SB % kUnitBlocks == 0, "a stage holds whole units");
    constexpr int kStageUnits = SB / kUnitBlocks;  // units per row per stage
    // weights: (row, unit) items, consecutive threads on consecutive units of a row
    for (int item = tid; item < kRows * kStageUnits; item += n_threads) {
        const int row = item / kStageUnits, su = item % kStageUnits, u = u0 + su;
        int* q = &sh.w[row][su * kUnitBlocks * 8];
        if (u < ta.n_units) {
            const uint8_t* wrow = ta.mat + min(ta.row0 + row, ta.n_out - 1) * ta.row_bytes;  // rows past the end: not written
            typename U::Regs r;
            U::load(wrow + static_cast<size_t>(u / U::kUnitsPerBlock) * U::kBlockBytes, u % U::kUnitsPerBlock, r);
#pragma unroll
            for (int s = 0; s < kUnitBlocks; ++s) {
                float sc[2], mn[2];
                tiles::export_block<U>(r, s, q + 8 * s, sc, mn);
                sh.w_scmn[row][su * kUnitBlocks + s] = make_float4(sc[0], sc[1], mn[0], mn[1]);
            }
        } else {  // past the row's end (n_in not a multiple of the stage): zeros contribute nothing
#pragma unroll
            for (int s = 0; s < kUnitBlocks; ++s) {
#pragma unroll
                for (int w = 0; w < 8; ++w) q[8 * s + w] = 0;
                sh.w_scmn[row][su * kUnitBlocks + s] = make_float4(0.f, 0.f, 0.f, 0.f);
            }
        }
    }
    // activations: (slot, block) items of the live tiles; slots past the count repeat the last one
    const int b0 = u0 * kUnitBlocks, n_blocks = ta.n_units * kUnitBlocks;
    for (int item = tid; item < 8 * ta.live_tiles * SB; item += n_threads) {
        const int c = item / SB, b = item % SB;
        int* q = &sh.a[c][b * 8];
        if (b0 + b < n_blocks) {
            const int64_t x_row = ta.slot_rows[ta.first + min(c, ta.count - 1)];
            const BlockQ8_1* blk = ta.x + x_row * ta.x_row_blocks + b0 + b;
            const float d = q8_1_ds(blk).x;
            int s0 = 0, s1 = 0;
#pragma unroll
            for (int w = 0; w < 8; ++w) {
                q[w] = q8_1_word(blk, w);
                if (w < 4) s0 = __dp4a(q[w], 0x01010101, s0);
                else s1 = __dp4a(q[w], 0x01010101, s1);
            }
            if constexpr (T::kMinPerHalf) {
                sh.a_ds[b][c] = make_float2(d, d * static_cast<float>(s0));
                sh.a_s1[b][c] = d * static_cast<float>(s1);
            } else {
                sh.a_ds[b][c] = make_float2(d, d * static_cast<float>(s0 + s1));
            }
        } else {
#pragma unroll
            for (int w = 0; w < 8; ++w) q[w] = 0;
            sh.a_ds[b][c] = make_float2(0.f, 0.f);
            sh.a_s1[b][c] = 0.f;
        }
    }
}

// Warp `warp`'s 16 rows times the live slot tiles of a staged tile, into acc[slot tile][fragment element].
template <class U, int NS, int SB, int kRows>
__device__ __forceinline__ void multiply_tile(const Shared<NS, SB, kRows>& sh, int warp, int lane, int live_tiles,
                                              float (&acc)[NS / 8][4]) {
    using T = tiles::Traits<U>;
    const int g = lane / 4, t = lane % 4;
    const int r_lo = 16 * warp + g, r_hi = r_lo + 8;  // this thread's two rows within the block
#pragma unroll 2
    for (int b = 0; b < SB; ++b) {
        int a[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = sh.w[(i & 1) ? r_hi : r_lo][b * 8 + 4 * (i >> 1) + t];
        const float4 wl = sh.w_scmn[r_lo][b], wh = sh.w_scmn[r_hi][b];  // (sc0, sc1, mn0, mn1)
#pragma unroll
        for (int j = 0; j < NS / 8; ++j) {
            if (j >= live_tiles) break;  // uniform over the block
            const int c0 = 8 * j + 2 * t;  // this thread's two slots in tile j: c0, c0 + 1
            const int bq[2] = {sh.a[8 * j + g][b * 8 + t], sh.a[8 * j + g][b * 8 + 4 + t]};
            const float4 ds = *reinterpret_cast<const float4*>(&sh.a_ds[b][c0]);  // d0, sum0, d1, sum1
            if constexpr (T::kPerHalf) {
                int lo[4], hi[4];
                tiles::mma_k16(a[0], a[1], bq[0], lo);
                tiles::mma_k16(a[2], a[3], bq[1], hi);
                acc[j][0] += ds.x * (wl.x * static_cast<float>(lo[0]) + wl.y * static_cast<float>(hi[0]));
                acc[j][1] += ds.z * (wl.x * static_cast<float>(lo[1]) + wl.y * static_cast<float>(hi[1]));
                acc[j][2] += ds.x * (wh.x * static_cast<float>(lo[2]) + wh.y * static_cast<float>(hi[2]));
                acc[j][3] += ds.z * (wh.x * static_cast<float>(lo[3]) + wh.y * static_cast<float>(hi[3]));
            } else {
                int dq[4];
                tiles::mma_k32(a, bq, dq);
                acc[j][0] += ds.x * wl.x * static_cast<float>(dq[0]);
                acc[j][1] += ds.z * wl.x * static_cast<float>(dq[1]);
                acc[j][2] += ds.x * wh.x * static_cast<float>(dq[2]);
                acc[j][3] += ds.z * wh.x * static_cast<float>(dq[3]);
            }
            if constexpr (T::kHasMin) {
                acc[j][0] -= wl.z * ds.y;
                acc[j][1] -= wl.z * ds.w;
                acc[j][2] -= wh.z * ds.y;
                acc[j][3] -= wh.z * ds.w;
                if constexpr (T::kMinPerHalf) {
                    const float2 s1 = *reinterpret_cast<const float2*>(&sh.a_s1[b][c0]);
                    acc[j][0] -= wl.w * s1.x;
                    acc[j][1] -= wl.w * s1.y;
                    acc[j][2] -= wh.w * s1.x;
                    acc[j][3] -= wh.w * s1.y;
                }
            }
        }
    }
}

// Warp `warp`'s results of a tile to y (row first + c, or y_rows[first + c]).
template <int NS>
__device__ __forceinline__ void store_tile(const float (&acc)[NS / 8][4], const TileArgs& ta, int warp, int lane, float* y,
                                           int64_t ldy, const int32_t* y_rows) {
    const int g = lane / 4, t = lane % 4;
    const int64_t rows[2] = {ta.row0 + 16 * warp + g, ta.row0 + 16 * warp + g + 8};
#pragma unroll
    for (int j = 0; j < NS / 8; ++j) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int c = 8 * j + 2 * t + (i & 1);
            const int64_t r = rows[i >> 1];
            if (c < ta.count && r < ta.n_out) {
                const int64_t out_row = y_rows ? y_rows[ta.first + c] : ta.first + c;
                y[out_row * ldy + r] = acc[j][i];
            }
        }
    }
}

// The slots of slot tile `tile` of expert e; count <= 0 past the expert's last tile.
template <int NS>
__device__ __forceinline__ void set_slots(TileArgs& ta, const int32_t* offsets, int e, int tile) {
    ta.first = offsets[e] + NS * tile;
    ta.count = min(NS, offsets[e + 1] - ta.first);
    ta.live_tiles = (ta.count + 7) / 8;  // tiles j >= live_tiles hold no slot: not staged, not multiplied
}

// NW warps of 16 rows each, every warp staging and then multiplying.
template <class U, int NS, int SB, int NW>
__global__ void __launch_bounds__(32 * NW) mmq_mma_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride, int n_units,
                                                           int64_t n_out, const BlockQ8_1* x, int64_t x_row_blocks,
                                                           const int32_t* offsets, const int32_t* slot_rows, float* y,
                                                           int64_t ldy, const int32_t* y_rows) {
    constexpr int kRows = 16 * NW;
    constexpr int kStageUnits = SB / (U::kElems / 32);
    __shared__ __align__(16) Shared<NS, SB, kRows> sh;
    const int e = blockIdx.z, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    TileArgs ta{W + e * mat_stride, row_bytes, static_cast<int64_t>(blockIdx.x) * kRows, n_out, n_units, x, x_row_blocks,
                slot_rows, 0, 0, 0};
    // slot tiles blockIdx.y, blockIdx.y + gridDim.y, ... of the expert, until past its count
    for (int tile = blockIdx.y;; tile += gridDim.y) {
        set_slots<NS>(ta, offsets, e, tile);
        if (ta.count <= 0) break;  // uniform over the block
        float acc[NS / 8][4] = {};
        for (int u0 = 0; u0 < n_units; u0 += kStageUnits) {
            stage_tile<U>(sh, ta, u0, threadIdx.x, 32 * NW);
            __syncthreads();
            multiply_tile<U>(sh, warp, lane, ta.live_tiles, acc);
            __syncthreads();
        }
        store_tile<NS>(acc, ta, warp, lane, y, ldy, y_rows);
    }
}

// Named barriers of the pipelined kernel (0 is __syncthreads): stage buffer b full, and free again.
__device__ __forceinline__ void bar_sync(int id, int n) { asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }
__device__ __forceinline__ void bar_arrive(int id, int n) { asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }
constexpr int kBarFull = 1, kBarFree = 3;  // + buffer (0 or 1)

// Pipelined: 64 rows x NS slots per block of 8 warps, warps 4..7 staging (producers) into two buffers in
// turn while warps 0..3 multiply the other (consumers), handing each buffer over with named barriers
// (bar.arrive by the side that finished, bar.sync by the side that waits), so the staging's memory
// latency hides behind the tensor-core work of the same block.
template <class U, int NS, int SB>
__global__ void __launch_bounds__(256) mmq_mma_pipelined_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride,
                                                                int n_units, int64_t n_out, const BlockQ8_1* x,
                                                                int64_t x_row_blocks, const int32_t* offsets,
                                                                const int32_t* slot_rows, float* y, int64_t ldy,
                                                                const int32_t* y_rows) {
    using Buf = Shared<NS, SB, 64>;
    constexpr int kStageUnits = SB / (U::kElems / 32);
    extern __shared__ __align__(16) unsigned char smem[];
    Buf* buf = reinterpret_cast<Buf*>(smem);  // buf[0], buf[1]
    const int e = blockIdx.z, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    TileArgs ta{W + e * mat_stride, row_bytes, static_cast<int64_t>(blockIdx.x) * 64, n_out, n_units, x, x_row_blocks,
                slot_rows, 0, 0, 0};
    const int stages_per_tile = (n_units + kStageUnits - 1) / kStageUnits;
    int n_tiles = 0;  // slot tiles of this block (both sides count them to agree on the last stages)
    for (int tile = blockIdx.y;; tile += gridDim.y, ++n_tiles) {
        set_slots<NS>(ta, offsets, e, tile);
        if (ta.count <= 0) break;
    }
    const int total = n_tiles * stages_per_tile;
    int s = 0;  // stage counter over all tiles: stage s uses buffer s % 2
    if (warp >= 4) {
        for (int tile = blockIdx.y; s < total; tile += gridDim.y) {
            set_slots<NS>(ta, offsets, e, tile);
            for (int u0 = 0; u0 < n_units; u0 += kStageUnits, ++s) {
                const int b = s & 1;
                if (s >= 2) bar_sync(kBarFree + b, 256);  // the consumers are done with stage s - 2
                stage_tile<U>(buf[b], ta, u0, threadIdx.x - 128, 128);
                bar_arrive(kBarFull + b, 256);
            }
        }
    } else {
        for (int tile = blockIdx.y; s < total; tile += gridDim.y) {
            set_slots<NS>(ta, offsets, e, tile);
            float acc[NS / 8][4] = {};
            for (int u0 = 0; u0 < n_units; u0 += kStageUnits, ++s) {
                const int b = s & 1;
                bar_sync(kBarFull + b, 256);
                multiply_tile<U>(buf[b], warp, lane, ta.live_tiles, acc);
                if (s + 2 < total) bar_arrive(kBarFree + b, 256);  // the producers wait for it only up to the end
            }
            store_tile<NS>(acc, ta, warp, lane, y, ldy, y_rows);
        }
    }
}

template <int NS, int SB, int NW, bool kPipelined = false>
void launch_mma(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts, int max_per_expert,
                float* y, int64_t ldy, const int32_t* y_rows, int grid_slot_tiles, cudaStream_t stream) {
    const int64_t tiles_y = ceil_div(max_per_expert, NS);
    // Every slot tile the bound allows, in parallel (blocks past an expert's count exit at once), unless
    // grid_slot_tiles asks for fewer blocks that loop. Not fewer by default: the routing of a batch can be
    // very uneven (a synthetic model sent each layer's 512 tokens to a few experts), and an expert's tiles
    // run one after the other in a looping block.
    const int64_t grid_y = grid_slot_tiles > 0 ? std::min<int64_t>(grid_slot_tiles, tiles_y) : tiles_y;
    if (grid_y > 65535) throw Error("mmq_ids: max_per_expert is too large");
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        if (n_in <= 0 || n_in % (U::kElems * U::kUnitsPerBlock) != 0) {
            throw Error("mmq_ids: n_in " + std::to_string(n_in) + " is not a multiple of the block size");
        }
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, 16 * NW)), static_cast<unsigned>(grid_y),
                        static_cast<unsigned>(n_experts));
        const auto* w = static_cast<const uint8_t*>(W);
        const auto* xb = static_cast<const BlockQ8_1*>(xq);
        const int n_units = static_cast<int>(n_in / U::kElems);
        if constexpr (kPipelined) {
            static_assert(NW == 4, "the pipelined kernel has 4 consumer warps of 16 rows");
            constexpr size_t bytes = 2 * sizeof(Shared<NS, SB, 64>);
            // above 48 KiB: the opt-in is a host-side attribute, set at every call (cheap; never captured)
            check_cuda(cudaFuncSetAttribute(mmq_mma_pipelined_kernel<U, NS, SB>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)),
                       "cudaFuncSetAttribute");
            mmq_mma_pipelined_kernel<U, NS, SB><<<grid, 256, bytes, stream>>>(w, row_bytes, mat_stride, n_units, n_out, xb,
                                                                              n_in / 32, expert_offsets, slot_rows, y,
                                                                              ldy, y_rows);
        } else {
            mmq_mma_kernel<U, NS, SB, NW><<<grid, 32 * NW, 0, stream>>>(w, row_bytes, mat_stride, n_units, n_out, xb,
                                                                        n_in / 32, expert_offsets, slot_rows, y, ldy,
                                                                        y_rows);
        }
    });
}

}  // namespace

bool mmq_tensor_cores_available() {
    int device = 0, major = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
    return major >= 8;
}

void mmq_ids_mma(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                 const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts, int max_per_expert,
                 float* y, int64_t ldy, cudaStream_t stream, MmaTile tile, const int32_t* y_rows,
                 int grid_slot_tiles) {
    if (!mmvq_supported(type)) throw Error("mmq_ids: type " + std::to_string(static_cast<int>(type)) + " has no int8 kernel");
    if (n_experts < 1 || n_experts > 65535) throw Error("mmq_ids: n_experts must be in 1..65535");
    if (n_out <= 0 || max_per_expert <= 0) return;
    switch (tile) {
        case MmaTile::Slots64:
            launch_mma<64, 8, 4>(type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows, n_experts,
                              max_per_expert, y, ldy, y_rows, grid_slot_tiles, stream);
            break;
        case MmaTile::Slots64Short:
            launch_mma<64, 4, 4>(type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows, n_experts,
                              max_per_expert, y, ldy, y_rows, grid_slot_tiles, stream);
            break;
        case MmaTile::Slots32:
            launch_mma<32, 8, 4>(type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows, n_experts,
                                 max_per_expert, y, ldy, y_rows, grid_slot_tiles, stream);
            break;
        case MmaTile::Pipelined:
            launch_mma<64, 4, 4, true>(type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows,
                                       n_experts, max_per_expert, y, ldy, y_rows, grid_slot_tiles, stream);
            break;
        case MmaTile::Rows128:
            launch_mma<64, 4, 8>(type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows, n_experts,
                                 max_per_expert, y, ldy, y_rows, grid_slot_tiles, stream);
            break;
        default: throw Error("mmq_ids: unknown tile");
    }
    check_launch("mmq_ids (tensor cores)");
}

}  // namespace runtime::cuda
