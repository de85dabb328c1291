// MoE prefill on the tensor cores: the grouped expert matmul with int8 mma.sync (sm_80 and later).
//
// A thread block computes 64 weight rows x NS (64 or 32) grouped slots of one expert. Per stage of SB
// 32-element blocks (8 or 4) it
// decodes the weight rows' units into int8 blocks of 32 with their scales (mma_tiles.cuh) and copies the
// slots' q8_1 activation blocks (quad layout: 16-byte loads) into shared memory, then each block's (or
// half-block's) exact integer sum; then each
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
template <int NS, int SB, int kRowsPerBlock>
struct Shared {
    static constexpr int kStride = SB * 8 + 4;  // row pitch in words: rows g = 0..7 hit different banks
    int w[kRowsPerBlock][kStride];
    // (sc[0], sc[1], mn[0], mn[1]) per block and row: one 16-byte load, a warp's 8 rows g in one wavefront
    float4 w_scmn[SB][kRowsPerBlock];
    int a[NS][kStride];
    // per block and slot (consecutive slots adjacent: a thread's two slots in one 16-byte load): d and
    // d * (sum of the int8 values), of the whole block or, where the minimums are per 16 (Q2_K), of its
    // first half; the second half's d * sum in a_s1
    float2 a_ds[SB][NS];
    float a_s1[SB][NS];
    const BlockQ8_1Quad* x_row[NS];  // the tile's activation rows (slots past the count: the last one)
};

// Several dense matrices of one type and width on the same rows, one per blockIdx.z (mmq_mma_dense).
struct DenseMats {
    const uint8_t* W[kMmvqMaxMats];
    int64_t n_out[kMmvqMaxMats];
    float* y[kMmvqMaxMats];
    int64_t ldy[kMmvqMaxMats];
    // > 1: each slot tile's 32-blocks split into k_split ranges, one block each, added into the zeroed y
    int k_split = 1;
};

// Element z of a kernel parameter's array by selects: indexing it with blockIdx.z would copy the whole
// parameter to local memory.
template <class V>
__device__ __forceinline__ V pick(const V (&v)[kMmvqMaxMats], int z) {
    static_assert(kMmvqMaxMats == 4, "one select per matrix");
    return z == 0 ? v[0] : z == 1 ? v[1] : z == 2 ? v[2] : v[3];
}

// NW warps of RT 16-row tiles each: kRowsPerBlock = 16 RT NW rows per block. With RT = 2 a warp's two
// row tiles share each activation fragment it reads from shared memory (half the reads per product:
// shared-memory wavefronts bound the kernel on the H200). blockIdx.z is the expert, or with kDense the
// dense matrix of `dense` (every one holding all the slots of group 0), split as dense.k_split says: a
// template parameter so that the experts' kernel carries none of it (80 -> 94 registers with it).
template <class U, int NS, int SB, int NW, int RT, bool kDense>
__global__ void __launch_bounds__(32 * NW) mmq_mma_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride, int n_units,
                                                           int64_t n_out, const BlockQ8_1Quad* x, int64_t n_quads,
                                                           const int32_t* offsets, const int32_t* slot_rows, float* y,
                                                           int64_t ldy, const int32_t* y_rows, DenseMats dense) {
    using T = tiles::Traits<U>;
    constexpr int kRowsPerBlock = 16 * RT * NW, kThreads = 32 * NW;
    constexpr int NT = NS / 8;                     // mma tiles of 8 slots
    constexpr int kUnitBlocks = U::kElems / 32;    // 32-blocks per unit
    static_assert(SB % kUnitBlocks == 0, "a stage holds whole units");
    constexpr int kStageUnits = SB / kUnitBlocks;  // units per row per stage
    // dynamic: with the row pointers the largest tile passes the 48 KiB a static array may take
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    auto& sh = *reinterpret_cast<Shared<NS, SB, kRowsPerBlock>*>(shared_bytes);

    const int z = blockIdx.z, e = kDense ? 0 : z;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
    const uint8_t* mat = W + e * mat_stride;
    if constexpr (kDense) {  // the grid spans the tallest matrix: blocks past this one's rows have nothing to do
        mat = pick(dense.W, z);
        n_out = pick(dense.n_out, z);
        y = pick(dense.y, z);
        ldy = pick(dense.ldy, z);
        if (row0 >= n_out) return;
    }
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;

    // with a split: this block's units [u_begin, u_end) (whole stages)
    int k_split = 1, u_begin = 0, u_end = n_units;
    if constexpr (kDense) k_split = dense.k_split;
    if (k_split > 1) {
        const int per = (n_units + kStageUnits * k_split - 1) / (kStageUnits * k_split) * kStageUnits;
        u_begin = static_cast<int>(blockIdx.y % k_split) * per;
        u_end = min(n_units, u_begin + per);
    }
    // slot tiles blockIdx.y, blockIdx.y + gridDim.y, ... (over k_split) of the expert, until past its count
    for (int tile = blockIdx.y / k_split;; tile += gridDim.y / k_split) {
        const int first = offsets[e] + NS * tile;
        const int count = min(NS, offsets[e + 1] - first);
        if (count <= 0) break;  // uniform over the block
        const int live_tiles = (count + 7) / 8;  // tiles j >= live_tiles hold no slot: not staged, not multiplied
        float acc[RT][NT][4] = {};  // [row tile][slot tile][fragment element]
        // (the previous tile's last reads of x_row were before its last stage's closing barrier)
        for (int c = tid; c < 8 * live_tiles; c += kThreads) {
            sh.x_row[c] = x + static_cast<int64_t>(slot_rows[first + min(c, count - 1)]) * n_quads;
        }
        __syncthreads();

        for (int u0 = u_begin; u0 < u_end; u0 += kStageUnits) {
            // weights: (row, unit) items, consecutive threads on consecutive units of a row
            for (int item = tid; item < kRowsPerBlock * kStageUnits; item += kThreads) {
                const int row = item / kStageUnits, su = item % kStageUnits, u = u0 + su;
                int* q = &sh.w[row][su * kUnitBlocks * 8];
                if (u < u_end) {
                    const uint8_t* wrow = mat + min(row0 + row, n_out - 1) * row_bytes;  // rows past the end: not written
                    typename U::Regs r;
                    U::load(wrow + static_cast<size_t>(u / U::kUnitsPerBlock) * U::kBlockBytes, u % U::kUnitsPerBlock, r);
    #pragma unroll
                    for (int s = 0; s < kUnitBlocks; ++s) {
                        float sc[2], mn[2];
                        tiles::export_block<U>(r, s, q + 8 * s, sc, mn);
                        sh.w_scmn[su * kUnitBlocks + s][row] = make_float4(sc[0], sc[1], mn[0], mn[1]);
                    }
                } else {  // past the row's end or the split's: zeros contribute nothing
    #pragma unroll
                    for (int s = 0; s < kUnitBlocks; ++s) {
    #pragma unroll
                        for (int w = 0; w < 8; ++w) q[8 * s + w] = 0;
                        sh.w_scmn[su * kUnitBlocks + s][row] = make_float4(0.f, 0.f, 0.f, 0.f);
                    }
                }
            }
            // activations: the stage's quads of each live slot's row, 16 bytes per load (the (d, s) words of
            // four blocks, or 16 of their int8 values); quads past the row's end become zeros
            const int b0 = u0 * kUnitBlocks;  // a multiple of 4: SB is
            constexpr int kQuads = SB / 4, kPieces = 9 * kQuads;  // 16-byte pieces per slot and stage
            for (int item = tid; item < 8 * live_tiles * kPieces; item += kThreads) {
                const int c = item / kPieces, p = item % kPieces, qd = p / 9, part = p % 9;
                uint4 v = make_uint4(0u, 0u, 0u, 0u);
                if (b0 / 4 + qd < n_quads) v = reinterpret_cast<const uint4*>(sh.x_row[c] + b0 / 4 + qd)[part];
                if (part == 0) {
                    const uint32_t ds[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                    for (int i = 0; i < 4; ++i) sh.a_ds[4 * qd + i][c].x = half_bits_to_float(static_cast<uint16_t>(ds[i] & 0xffff));
                } else {
                    const int b = 4 * qd + (part - 1) / 2, half = (part - 1) % 2;
                    *reinterpret_cast<uint4*>(&sh.a[c][b * 8 + 4 * half]) = v;
                }
            }
            __syncthreads();
            // the exact integer sums of each block (or of its halves), scaled by d
            for (int item = tid; item < 8 * live_tiles * SB; item += kThreads) {
                const int c = item / SB, b = item % SB;
                const int* q = &sh.a[c][b * 8];
                int s0 = 0, s1 = 0;
#pragma unroll
                for (int w = 0; w < 4; ++w) {
                    s0 = __dp4a(q[w], 0x01010101, s0);
                    s1 = __dp4a(q[w + 4], 0x01010101, s1);
                }
                const float d = sh.a_ds[b][c].x;
                if constexpr (T::kMinPerHalf) {
                    sh.a_ds[b][c].y = d * static_cast<float>(s0);
                    sh.a_s1[b][c] = d * static_cast<float>(s1);
                } else {
                    sh.a_ds[b][c].y = d * static_cast<float>(s0 + s1);
                }
            }
            __syncthreads();

            constexpr int kUnrollB = RT == 1 ? 2 : 1;  // (two row tiles: registers for one block at a time)
    #pragma unroll kUnrollB
            for (int b = 0; b < SB; ++b) {
                int a[RT][4];
                float4 wl[RT], wh[RT];  // (sc0, sc1, mn0, mn1) of this thread's two rows in each row tile
    #pragma unroll
                for (int rt = 0; rt < RT; ++rt) {
                    const int r_lo = 16 * (RT * warp + rt) + g, r_hi = r_lo + 8;
    #pragma unroll
                    for (int i = 0; i < 4; ++i) a[rt][i] = sh.w[(i & 1) ? r_hi : r_lo][b * 8 + 4 * (i >> 1) + t];
                    wl[rt] = sh.w_scmn[b][r_lo];
                    wh[rt] = sh.w_scmn[b][r_hi];
                }
    #pragma unroll
                for (int j = 0; j < NT; ++j) {
                    if (j >= live_tiles) break;  // uniform over the block
                    const int c0 = 8 * j + 2 * t;  // this thread's two slots in tile j: c0, c0 + 1
                    const int bq[2] = {sh.a[8 * j + g][b * 8 + t], sh.a[8 * j + g][b * 8 + 4 + t]};
                    const float4 ds = *reinterpret_cast<const float4*>(&sh.a_ds[b][c0]);  // d0, sum0, d1, sum1
                    float2 s1 = make_float2(0.f, 0.f);
                    if constexpr (T::kMinPerHalf) s1 = *reinterpret_cast<const float2*>(&sh.a_s1[b][c0]);
    #pragma unroll
                    for (int rt = 0; rt < RT; ++rt) {
                        float* c = acc[rt][j];
                        if constexpr (T::kPerHalf) {
                            int lo[4], hi[4];
                            tiles::mma_k16(a[rt][0], a[rt][1], bq[0], lo);
                            tiles::mma_k16(a[rt][2], a[rt][3], bq[1], hi);
                            c[0] += ds.x * (wl[rt].x * static_cast<float>(lo[0]) + wl[rt].y * static_cast<float>(hi[0]));
                            c[1] += ds.z * (wl[rt].x * static_cast<float>(lo[1]) + wl[rt].y * static_cast<float>(hi[1]));
                            c[2] += ds.x * (wh[rt].x * static_cast<float>(lo[2]) + wh[rt].y * static_cast<float>(hi[2]));
                            c[3] += ds.z * (wh[rt].x * static_cast<float>(lo[3]) + wh[rt].y * static_cast<float>(hi[3]));
                        } else {
                            int dq[4];
                            tiles::mma_k32(a[rt], bq, dq);
                            c[0] += ds.x * wl[rt].x * static_cast<float>(dq[0]);
                            c[1] += ds.z * wl[rt].x * static_cast<float>(dq[1]);
                            c[2] += ds.x * wh[rt].x * static_cast<float>(dq[2]);
                            c[3] += ds.z * wh[rt].x * static_cast<float>(dq[3]);
                        }
                        if constexpr (T::kHasMin) {
                            c[0] -= wl[rt].z * ds.y;
                            c[1] -= wl[rt].z * ds.w;
                            c[2] -= wh[rt].z * ds.y;
                            c[3] -= wh[rt].z * ds.w;
                            if constexpr (T::kMinPerHalf) {
                                c[0] -= wl[rt].w * s1.x;
                                c[1] -= wl[rt].w * s1.y;
                                c[2] -= wh[rt].w * s1.x;
                                c[3] -= wh[rt].w * s1.y;
                            }
                        }
                    }
                }
            }
            __syncthreads();
        }

    #pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
            const int64_t rows[2] = {row0 + 16 * (RT * warp + rt) + g, row0 + 16 * (RT * warp + rt) + g + 8};
    #pragma unroll
            for (int j = 0; j < NT; ++j) {
    #pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int c = 8 * j + 2 * t + (i & 1);
                    const int64_t r = rows[i >> 1];
                    if (c < count && r < n_out) {
                        const int64_t out_row = y_rows ? y_rows[first + c] : first + c;
                        if (k_split > 1) atomicAdd(&y[out_row * ldy + r], acc[rt][j][i]);  // two: a + b either way
                        else y[out_row * ldy + r] = acc[rt][j][i];
                    }
                }
            }
        }
    }  // slot tiles
}

// Lets `Kernel` take `bytes` of dynamic shared memory, once per kernel (and device: the tiles fit every
// sm_80+ part).
template <auto Kernel>
void opt_in_shared(size_t bytes) {
    static const bool done = [&] {
        check_cuda(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
                   "cudaFuncSetAttribute (mmq_mma shared memory)");
        return true;
    }();
    (void)done;
}

template <int NS, int SB, int NW, int RT = 1>
void launch_mma(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts, int max_per_expert,
                float* y, int64_t ldy, const int32_t* y_rows, int grid_slot_tiles, const DenseMats& dense, int n_dense,
                cudaStream_t stream) {
    const int64_t tiles_y = ceil_div(max_per_expert, NS) * (n_dense > 0 ? dense.k_split : 1);
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
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, 16 * RT * NW)), static_cast<unsigned>(grid_y),
                        static_cast<unsigned>(n_dense > 0 ? n_dense : n_experts));
        constexpr size_t kShared = sizeof(Shared<NS, SB, 16 * RT * NW>);
        const auto launch = [&](auto kernel) {
            kernel<<<grid, 32 * NW, kShared, stream>>>(static_cast<const uint8_t*>(W), row_bytes, mat_stride,
                                                       static_cast<int>(n_in / U::kElems), n_out,
                                                       static_cast<const BlockQ8_1Quad*>(xq), ceil_div(n_in, 128),
                                                       expert_offsets, slot_rows, y, ldy, y_rows, dense);
        };
        if (n_dense > 0) {
            opt_in_shared<mmq_mma_kernel<U, NS, SB, NW, RT, true>>(kShared);
            launch(mmq_mma_kernel<U, NS, SB, NW, RT, true>);
        } else {
            opt_in_shared<mmq_mma_kernel<U, NS, SB, NW, RT, false>>(kShared);
            launch(mmq_mma_kernel<U, NS, SB, NW, RT, false>);
        }
    });
}

// launch_mma in the tile shape `tile`.
void launch_tile(MmaTile tile, GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in,
                 int64_t n_out, const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts,
                 int max_per_expert, float* y, int64_t ldy, const int32_t* y_rows, int grid_slot_tiles,
                 const DenseMats& dense, int n_dense, cudaStream_t stream) {
    decltype(&launch_mma<64, 8, 4>) launch = nullptr;  // (NS slots, SB blocks a stage, NW warps, RT row tiles a warp)
    switch (tile) {
        case MmaTile::Slots64: launch = &launch_mma<64, 8, 4>; break;
        case MmaTile::Slots64Short: launch = &launch_mma<64, 4, 4>; break;
        case MmaTile::Slots32: launch = &launch_mma<32, 8, 4>; break;
        case MmaTile::Rows128: launch = &launch_mma<64, 4, 8>; break;
        case MmaTile::Rows128Paired: launch = &launch_mma<64, 4, 4, 2>; break;
        default: throw Error("mmq_ids: unknown tile");
    }
    launch(type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows, n_experts, max_per_expert, y, ldy,
           y_rows, grid_slot_tiles, dense, n_dense, stream);
    check_launch("mmq_ids (tensor cores)");
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
    launch_tile(tile, type, W, row_bytes, mat_stride, n_in, n_out, xq, expert_offsets, slot_rows, n_experts, max_per_expert, y,
                ldy, y_rows, grid_slot_tiles, DenseMats{}, 0, stream);
}

int mma_dense_k_split(MmaTile tile, const MmvqMat* mats, int n_mats, int64_t n_in, int n_tok) {
    static const int sms = [] {
        int device = 0, n = 0;
        check_cuda(cudaGetDevice(&device), "cudaGetDevice");
        check_cuda(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
        return n;
    }();
    const int rows = tile == MmaTile::Rows128 || tile == MmaTile::Rows128Paired ? 128 : 64;
    const int slots = tile == MmaTile::Slots32 ? 32 : 64;
    int64_t blocks = 0;
    for (int m = 0; m < n_mats; ++m) blocks += ceil_div(mats[m].n_out, rows);
    blocks *= ceil_div(n_tok, slots);
    return blocks < 2 * sms && n_in >= 2048 ? 2 : 1;
}

void mmq_mma_dense(GgmlType type, const MmvqMat* mats, int n_mats, int64_t n_in, const void* xq, const int32_t* offsets,
                   const int32_t* slot_rows, int n_tok, cudaStream_t stream, MmaTile tile, int k_split) {
    if (!mmvq_supported(type)) throw Error("mmq_mma_dense: type " + std::to_string(static_cast<int>(type)) + " has no int8 kernel");
    if (n_mats < 1 || n_mats > kMmvqMaxMats) throw Error("mmq_mma_dense: " + std::to_string(n_mats) + " matrices (1..4)");
    if (k_split != 1 && k_split != 2) throw Error("mmq_mma_dense: k_split must be 1 or 2");
    if (n_tok <= 0) return;
    DenseMats dense{};
    dense.k_split = k_split;
    int64_t tallest = 0;
    for (int m = 0; m < n_mats; ++m) {
        if (mats[m].row_bytes != mats[0].row_bytes) throw Error("mmq_mma_dense: the matrices differ in row size");
        dense.W[m] = static_cast<const uint8_t*>(mats[m].W);
        dense.n_out[m] = mats[m].n_out;
        dense.y[m] = mats[m].y;
        dense.ldy[m] = mats[m].ldy;
        tallest = std::max(tallest, mats[m].n_out);
    }
    if (tallest <= 0) return;
    if (k_split > 1) {  // the two halves are added into zeros
        for (int m = 0; m < n_mats; ++m) {
            if (mats[m].n_out <= 0) continue;
            check_cuda(cudaMemset2DAsync(mats[m].y, sizeof(float) * mats[m].ldy, 0, sizeof(float) * mats[m].n_out, n_tok, stream),
                       "cudaMemset2DAsync (mmq_mma_dense)");
        }
    }
    launch_tile(tile, type, nullptr, mats[0].row_bytes, 0, n_in, tallest, xq, offsets, slot_rows, 1, n_tok, nullptr, 0,
                nullptr, 0, dense, n_mats, stream);
}

}  // namespace runtime::cuda
