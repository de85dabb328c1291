// MoE prefill: routing slots grouped by expert on the device (a stable counting sort in one thread
// block of up to 32 warps), and the dp4a form of the grouped matmul (the tensor-core form is in mmq_mma.cu): each
// expert's slots multiplied in tiles of 8: a thread block decodes a span of weight rows
// once per tile and dots every unit with the tile's 8 activation rows (int8 dp4a, the mmvq units); each
// thread takes 2 or 4 rows so that every activation load feeds several dot products.
// Tiles beyond an expert's slot count exit at once, so the grid can be sized by an upper bound.
#include <algorithm>

#include "cuda/quant_units.cuh"

namespace runtime::cuda {

namespace {

constexpr int kGroupSharedInts = 12 * 1024;  // 48 KiB
constexpr int kGroupMaxExperts = kGroupSharedInts / 2 - 1;
constexpr int kThreads = 128;
constexpr int kTile = 8;  // slots per tile: the register accumulators of units::row_dot

// Warp w takes the w-th contiguous chunk of the slots. Pass 1 counts each expert's slots per chunk
// (lanes holding the same expert found with one match; its lowest lane adds their number); the counts
// become, per expert, the start of each chunk's share and the experts' offsets; pass 2 walks the chunks
// again and places each slot at its chunk's position plus its rank among the lanes of its expert. Chunks
// and lanes are in slot order, so the placement is stable. Every read of ids is coalesced.
__global__ void group_kernel(const int32_t* ids, int n_slots, int k, int n_experts, int32_t* offsets,
                             int32_t* slot_rows, int32_t* slot_of_group) {
    extern __shared__ int32_t shared[];
    const int n_warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int32_t* start = shared;                                      // n_experts + 1
    int32_t* chunk_count = shared + n_experts + 1;                // [warp][expert]
    int32_t* mine = chunk_count + static_cast<size_t>(warp) * n_experts;
    for (int i = threadIdx.x; i < n_warps * n_experts; i += blockDim.x) chunk_count[i] = 0;
    __syncthreads();
    const int chunk = (n_slots + n_warps - 1) / n_warps;
    const int s_begin = min(n_slots, warp * chunk), s_end = min(n_slots, s_begin + chunk);
    const unsigned lower = (1u << lane) - 1u;
    for (int base = s_begin; base < s_end; base += 32) {
        const int s = base + lane;
        int e = s < s_end ? ids[s] : -1;
        if (e >= n_experts) e = -1;
        const unsigned same = __match_any_sync(0xffffffffu, e);
        if (e >= 0 && (same & lower) == 0) mine[e] += __popc(same);
        __syncwarp();
    }
    __syncthreads();
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
        int run = 0;
        for (int w = 0; w < n_warps; ++w) {
            const int c = chunk_count[w * n_experts + e];
            chunk_count[w * n_experts + e] = run;
            run += c;
        }
        start[e] = run;
    }
    __syncthreads();
    if (warp == 0) {  // exclusive scan of the experts' counts, 32 at a time
        int carry = 0;
        for (int e0 = 0; e0 < n_experts; e0 += 32) {
            const int e = e0 + lane;
            const int v = e < n_experts ? start[e] : 0;
            int incl = v;
            for (int o = 1; o < 32; o *= 2) {
                const int up = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += up;
            }
            if (e < n_experts) {
                start[e] = carry + incl - v;
                offsets[e] = carry + incl - v;
            }
            carry += __shfl_sync(0xffffffffu, incl, 31);
        }
        if (lane == 0) offsets[n_experts] = carry;
    }
    __syncthreads();
    for (int base = s_begin; base < s_end; base += 32) {
        const int s = base + lane;
        int e = s < s_end ? ids[s] : -1;
        if (e >= n_experts) e = -1;
        const unsigned same = __match_any_sync(0xffffffffu, e);
        if (e >= 0) {
            const int at = start[e] + mine[e] + __popc(same & lower);
            slot_rows[at] = s / k;
            slot_of_group[at] = s;
        }
        __syncwarp();
        if (e >= 0 && (same & lower) == 0) mine[e] += __popc(same);
        __syncwarp();
    }
}

// Weight rows per thread: each activation word loaded then serves kRows dot products (the loads, not
// the dp4a, bound this kernel). Fewer for the formats whose decoded unit takes many registers.
template <class U>
constexpr int kRowsPerThread = sizeof(typename U::Regs) <= 48 ? 4 : 2;

template <class U>
__global__ void __launch_bounds__(kThreads) mmq_ids_kernel(const uint8_t* W, size_t row_bytes, size_t mat_stride, int n_units,
                                                           int64_t n_out, const BlockQ8_1* x, int64_t x_row_blocks,
                                                           const int32_t* offsets, const int32_t* slot_rows, float* y,
                                                           int64_t ldy, int lanes) {
    constexpr int kRows = kRowsPerThread<U>;
    const int e = blockIdx.z;
    const int first = offsets[e] + kTile * static_cast<int>(blockIdx.y);
    const int count = min(kTile, offsets[e + 1] - first);
    if (count <= 0) return;  // the whole block: no segment is left waiting in a shuffle
    const int seg = threadIdx.x / lanes, lane = threadIdx.x % lanes;
    const int64_t r0 = (static_cast<int64_t>(blockIdx.x) * (kThreads / lanes) + seg) * kRows;
    const uint8_t* rows[kRows];
#pragma unroll
    for (int i = 0; i < kRows; ++i) {  // rows past the end repeat the last one and are not written
        rows[i] = W + e * mat_stride + min(r0 + i, n_out - 1) * row_bytes;
    }
    const BlockQ8_1* xs[kTile];
#pragma unroll
    for (int t = 0; t < kTile; ++t) xs[t] = x + static_cast<int64_t>(slot_rows[first + min(t, count - 1)]) * x_row_blocks;
    float acc[kRows][kTile] = {};
    for (int u = lane; u < n_units; u += lanes) {
        typename U::Regs regs[kRows];
        const size_t at = static_cast<size_t>(u / U::kUnitsPerBlock) * U::kBlockBytes;
#pragma unroll
        for (int i = 0; i < kRows; ++i) U::load(rows[i] + at, u % U::kUnitsPerBlock, regs[i]);
        const int blk = u * (U::kElems / 32);
#pragma unroll
        for (int t = 0; t < kTile; ++t) {
            if (t < count) {
                units::ActRegs<U::kElems / 32> a;  // loaded once, used by all kRows rows
                a.load(xs[t] + blk);
#pragma unroll
                for (int i = 0; i < kRows; ++i) acc[i][t] += U::dot(regs[i], a);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
#pragma unroll
        for (int t = 0; t < kTile; ++t) {
            const float v = units::segment_sum(acc[i][t], lanes);
            if (lane == 0 && t < count && r0 + i < n_out) y[static_cast<int64_t>(first + t) * ldy + r0 + i] = v;
        }
    }
}

}  // namespace

void group_slots_by_expert(const int32_t* ids, int n_tok, int k, int n_experts, int32_t* expert_offsets,
                           int32_t* slot_rows, int32_t* slot_of_group, cudaStream_t stream) {
    if (n_tok < 0 || k < 1 || n_experts < 1) throw Error("group_slots_by_expert: bad n_tok, k or n_experts");
    const int64_t n_slots = static_cast<int64_t>(n_tok) * k;
    if (n_slots > (1 << 30)) throw Error("group_slots_by_expert: too many slots");
    if (n_experts > kGroupMaxExperts) {
        throw Error("group_slots_by_expert: " + std::to_string(n_experts) + " experts unsupported (at most " +
                    std::to_string(kGroupMaxExperts) + ")");
    }
    // as many warps (chunks) as their counts fit in kGroupSharedInts beside the experts' starts
    const int n_warps = std::clamp(kGroupSharedInts / (n_experts + 1) - 1, 1, 32);
    const size_t shared = sizeof(int32_t) * static_cast<size_t>(n_warps + 1) * (static_cast<size_t>(n_experts) + 1);
    group_kernel<<<1, 32 * n_warps, shared, stream>>>(ids, static_cast<int>(n_slots), k, n_experts, expert_offsets,
                                                       slot_rows, slot_of_group);
    check_launch("group_slots_by_expert");
}

void mmq_ids_dp4a(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
                  const void* xq, const int32_t* expert_offsets, const int32_t* slot_rows, int n_experts, int max_per_expert,
                  float* y, int64_t ldy, cudaStream_t stream) {
    if (!mmvq_supported(type)) throw Error("mmq_ids: type " + std::to_string(static_cast<int>(type)) + " has no int8 kernel");
    if (n_experts < 1 || n_experts > 65535) throw Error("mmq_ids: n_experts must be in 1..65535");
    if (n_out <= 0 || max_per_expert <= 0) return;
    const int64_t tiles = ceil_div(max_per_expert, kTile);
    if (tiles > 65535) throw Error("mmq_ids: max_per_expert is too large");
    units::dispatch(type, [&](auto unit) {
        using U = decltype(unit);
        if (n_in <= 0 || n_in % (U::kElems * U::kUnitsPerBlock) != 0) {
            throw Error("mmq_ids: n_in " + std::to_string(n_in) + " is not a multiple of the block size");
        }
        const int n_units = static_cast<int>(n_in / U::kElems);
        const int lanes = units::lanes_for(n_units);
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, kThreads / lanes * kRowsPerThread<U>)), static_cast<unsigned>(tiles),
                        static_cast<unsigned>(n_experts));
        mmq_ids_kernel<U><<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(W), row_bytes, mat_stride, n_units, n_out,
                                                         static_cast<const BlockQ8_1*>(xq), n_in / 32, expert_offsets,
                                                         slot_rows, y, ldy, lanes);
    });
    check_launch("mmq_ids (dp4a)");
}

}  // namespace runtime::cuda
