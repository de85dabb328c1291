// The decode mat-vec (one token) for Q4_K and Q6_K weights, laid out for memory bandwidth: see
// mmvq_wide.h for why the unit kernels of mmvq.cu stay far below it, and docs/cuda-kernels.md.
//
// A block stages its activation row once in shared memory as plain int8 values (16-byte aligned) and one
// float2 (d, d * sum) per 32, then each warp takes a few consecutive weight rows (4 for Q4_K, 8 for Q6_K),
// its loads for all of them in flight together. Eight lanes share a
// super-block, so a warp covers four super-blocks of every one of its rows per step:
// - Q4_K (144 bytes, 16-byte aligned when the rows are): lane j of a super-block loads 16 bytes of its
//   nibbles (bytes 16j..16j+15 of qs: 16 elements of sub-block 2(j/2) and the 16 matching ones of
//   sub-block 2(j/2)+1) and the 16-byte header (d, dmin, scales), both as one 16-byte load; the eight
//   lanes read 128 contiguous bytes.
// - Q6_K (210 bytes, 2-byte aligned only): the warp first copies its kRows rows (contiguous, 16-byte
//   aligned as a whole: 8 * 210 * n_sb is a multiple of 16) into shared memory with 16-byte loads, then
//   lane j decodes 32 elements of half j/4 of the super-block (8 bytes of each ql row, 8 of qh) from there.
// The arithmetic is that of quant_units.cuh's Q4_K / Q6_K (same integer dots and scales), summed in a
// different order, so results agree with the unit kernels to float rounding, not bit for bit.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cuda/pdl.cuh"
#include "cuda/kernel_common.cuh"
#include "cuda/mmvq_wide.h"
#include "cuda/stage_rows.cuh"

namespace runtime::cuda {

namespace {

constexpr int kRowsQ4 = 4;   // weight rows per warp, Q4_K: more warps for the small expert matrices
constexpr int kRows = 8;     // Q6_K: 8 rows of 210 * n_sb bytes are a multiple of 16 whatever n_sb
constexpr int kWarpsQ4 = 4;  // warps per block (Q4_K)
constexpr size_t kSmemCap = 48 * 1024;    // dynamic shared memory per block without an opt-in
constexpr int64_t kMaxIn = 16384;         // longest row staged (activations: 1.25 bytes per element)

// The block's activation row in shared memory: n_in int8 values, then n_in / 32 float2 (d, s).
struct XStage {
    const int8_t* q;
    const float2* ds;
};

// Copies activation row x (n_in / 32 q8_1 blocks) into shared memory at smem as XStage's layout; the
// caller synchronises. Word w of the row's 9-word blocks: word 0 holds d and s, words 1..8 the values.
__device__ __forceinline__ XStage stage_x(const BlockQ8_1* x, int n_blocks, uint8_t* smem, int tid, int n_threads) {
    int* q = reinterpret_cast<int*>(smem);
    float2* ds = reinterpret_cast<float2*>(smem + static_cast<size_t>(n_blocks) * 32);
    const uint32_t* src = reinterpret_cast<const uint32_t*>(x);
    for (int w = tid; w < n_blocks * 9; w += n_threads) {
        const int b = w / 9, k = w % 9;
        const uint32_t v = src[w];
        if (k == 0) {
            ds[b] = make_float2(half_bits_to_float(static_cast<uint16_t>(v & 0xffff)),
                                half_bits_to_float(static_cast<uint16_t>(v >> 16)));
        } else {
            q[b * 8 + k - 1] = static_cast<int>(v);
        }
    }
    return {reinterpret_cast<const int8_t*>(smem), ds};
}

__host__ __device__ inline size_t x_stage_bytes(int64_t n_in) { return static_cast<size_t>(n_in) + static_cast<size_t>(n_in / 32) * sizeof(float2); }

__device__ __forceinline__ int dot4(int4 a, int4 b, int s) {
    s = __dp4a(a.x, b.x, s);
    s = __dp4a(a.y, b.y, s);
    s = __dp4a(a.z, b.z, s);
    return __dp4a(a.w, b.w, s);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Q4_K sub-block scale and minimum (6 bits each) of sub-block j from the header's words 1..3.
__device__ __forceinline__ void q4k_scale_min(int j, uint32_t w0, uint32_t w1, uint32_t w2, float& sc, float& m) {
    const int sh = 8 * (j & 3);
    const int b0 = (w0 >> sh) & 0xff, b1 = (w1 >> sh) & 0xff, b2 = (w2 >> sh) & 0xff;
    if (j < 4) {
        sc = static_cast<float>(b0 & 63);
        m = static_cast<float>(b1 & 63);
    } else {
        sc = static_cast<float>((b2 & 0xf) | ((b0 >> 6) << 4));
        m = static_cast<float>((b2 >> 4) | ((b1 >> 6) << 4));
    }
}

// Block (row tile, slot): matrix W (+ ids[slot] * mat_stride with ids), activation row slot / x_group.
// Rows [r0, r0 + R) of warp w, r0 = (blockIdx.x * warps + w) * R (R = kRowsQ4 or kRows); rows past n_out
// are not read.
struct WideArgs {
    const uint8_t* W;
    size_t row_bytes, mat_stride;
    int n_sb;  // super-blocks per row
    int64_t n_out;
    const BlockQ8_1* x;
    int64_t x_row_blocks;
    int x_group;
    const int32_t* ids;  // null: one matrix, blockIdx.y 0
    float* y;
    int64_t ldy;
    // a second matrix set on the same activations (gate and up): blockIdx.y in [n_slots, 2 n_slots) reads
    // W2 and writes y2; null for one set
    const uint8_t* W2;
    float* y2;
    int n_slots;
};

// The block's slot and which matrix set it reads (blockIdx.y past n_slots: the second).
struct SlotOf {
    int slot;
    const uint8_t* W;
    float* y;
};
__device__ __forceinline__ SlotOf slot_of_block(const WideArgs& a) {
    const int b = blockIdx.y;
    if (a.W2 && b >= a.n_slots) return {b - a.n_slots, a.W2, a.y2};
    return {b, a.W, a.y};
}

// One matrix (no ids): the warp's rows [r0, r0 + n) asked into L2 before pdl_enter, so that under
// programmatic dependent launch their reads overlap the previous kernel's tail. Expert matrices depend on
// ids an earlier kernel writes: nothing to prefetch.
__device__ __forceinline__ void prefetch_rows(const WideArgs& a, int64_t r0, int n, int lane) {
    if (a.ids || r0 >= a.n_out) return;
    const int64_t rows = min(static_cast<int64_t>(n), a.n_out - r0);
    const uint8_t* p = slot_of_block(a).W + r0 * a.row_bytes;
    const size_t bytes = static_cast<size_t>(rows) * a.row_bytes;
    for (size_t off = static_cast<size_t>(lane) * 128; off < bytes; off += 32 * 128) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"(p + off));
    }
}

__device__ __forceinline__ const uint8_t* slot_matrix(const WideArgs& a, const SlotOf& so, bool& live) {
    live = true;
    if (!a.ids) return so.W;
    const int32_t e = a.ids[so.slot];
    live = e >= 0;
    return so.W + static_cast<int64_t>(live ? e : 0) * a.mat_stride;
}

template <int R>
__device__ __forceinline__ void store_rows(const WideArgs& a, const SlotOf& so, int64_t r0, const float (&acc)[R],
                                           bool live, int lane) {
#pragma unroll
    for (int i = 0; i < R; ++i) {
        const float v = warp_sum(acc[i]);
        if (lane == i && r0 + i < a.n_out) so.y[so.slot * a.ldy + r0 + i] = live ? v : 0.f;
    }
}

__global__ void __launch_bounds__(32 * kWarpsQ4) mmvq_wide_q4k(WideArgs a) {
    extern __shared__ uint4 smem_raw[];
    const SlotOf so = slot_of_block(a);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t r0 = (static_cast<int64_t>(blockIdx.x) * kWarpsQ4 + warp) * kRowsQ4;
    prefetch_rows(a, r0, kRowsQ4, lane);
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    bool live;
    const uint8_t* mat = slot_matrix(a, so, live);
    const XStage xs = stage_x(a.x + static_cast<int64_t>(so.slot / a.x_group) * a.x_row_blocks, a.n_sb * 8,
                              reinterpret_cast<uint8_t*>(smem_raw), threadIdx.x, blockDim.x);
    __syncthreads();
    float acc[kRowsQ4] = {};
    const int q = lane / 8, j = lane % 8;
    const int c = j / 2, h = j % 2;  // nibble chunk (sub-blocks 2c, 2c+1) and its half
    const int n_rows = static_cast<int>(min(static_cast<int64_t>(kRowsQ4), a.n_out - r0));
    if (live && n_rows > 0) {
        for (int sb = q; sb < a.n_sb; sb += 4) {
            // activations: elements 256 sb + 64 c + 16 h + 0..15 (low nibbles) and + 32 (high nibbles)
            const int e0 = 256 * sb + 64 * c + 16 * h;
            const int4 x_lo = *reinterpret_cast<const int4*>(xs.q + e0);
            const int4 x_hi = *reinterpret_cast<const int4*>(xs.q + e0 + 32);
            const float2 ds_lo = xs.ds[8 * sb + 2 * c], ds_hi = xs.ds[8 * sb + 2 * c + 1];
#pragma unroll
            for (int i = 0; i < kRowsQ4; ++i) {
                if (i >= n_rows) break;
                const uint8_t* blk = mat + (r0 + i) * a.row_bytes + static_cast<size_t>(sb) * 144;
                const uint4 hd = __ldg(reinterpret_cast<const uint4*>(blk));
                const uint4 qv = __ldg(reinterpret_cast<const uint4*>(blk + 16 + 16 * j));
                const int4 lo = make_int4(static_cast<int>(qv.x & 0x0F0F0F0Fu), static_cast<int>(qv.y & 0x0F0F0F0Fu),
                                          static_cast<int>(qv.z & 0x0F0F0F0Fu), static_cast<int>(qv.w & 0x0F0F0F0Fu));
                const int4 hi = make_int4(static_cast<int>((qv.x >> 4) & 0x0F0F0F0Fu),
                                          static_cast<int>((qv.y >> 4) & 0x0F0F0F0Fu),
                                          static_cast<int>((qv.z >> 4) & 0x0F0F0F0Fu),
                                          static_cast<int>((qv.w >> 4) & 0x0F0F0F0Fu));
                float sc0, m0, sc1, m1;
                q4k_scale_min(2 * c, hd.y, hd.z, hd.w, sc0, m0);
                q4k_scale_min(2 * c + 1, hd.y, hd.z, hd.w, sc1, m1);
                const float d = half_bits_to_float(static_cast<uint16_t>(hd.x & 0xffff));
                const float dmin = half_bits_to_float(static_cast<uint16_t>(hd.x >> 16));
                const int s0 = dot4(lo, x_lo, 0), s1 = dot4(hi, x_hi, 0);
                float v = d * (ds_lo.x * sc0 * static_cast<float>(s0) + ds_hi.x * sc1 * static_cast<float>(s1));
                // the minimum applies once per sub-block: the even lane of the pair takes it
                if (h == 0) v -= dmin * (m0 * ds_lo.y + m1 * ds_hi.y);
                acc[i] += v;
            }
        }
    }
    store_rows(a, so, r0, acc, live, lane);
}

// Q6_K: block (row tile, slot) of `warps` warps; the smem holds the activation stage, then per warp its
// kRows rows (copied with `grain`-byte loads).
__global__ void __launch_bounds__(128) mmvq_wide_q6k(WideArgs a, int grain) {
    extern __shared__ uint4 smem_raw[];
    uint8_t* smem = reinterpret_cast<uint8_t*>(smem_raw);
    const SlotOf so = slot_of_block(a);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    const int64_t r0 = (static_cast<int64_t>(blockIdx.x) * warps + warp) * kRows;
    prefetch_rows(a, r0, kRows, lane);
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    bool live;
    const uint8_t* mat = slot_matrix(a, so, live);
    const size_t x_bytes = (x_stage_bytes(static_cast<int64_t>(a.n_sb) * 256) + 15) / 16 * 16;
    const int n_rows = static_cast<int>(max(int64_t{0}, min(static_cast<int64_t>(kRows), a.n_out - r0)));
    uint8_t* rows = smem + x_bytes + static_cast<size_t>(warp) * kRows * a.row_bytes;
    if (live && n_rows > 0) stage_copy(mat + r0 * a.row_bytes, n_rows * a.row_bytes, rows, lane, 32, grain);
    const XStage xs = stage_x(a.x + static_cast<int64_t>(so.slot / a.x_group) * a.x_row_blocks, a.n_sb * 8, smem,
                              threadIdx.x, blockDim.x);
    __syncthreads();
    float acc[kRows] = {};
    const int q = lane / 8, j = lane % 8;
    const int h2 = j / 4, o = 8 * (j % 4);  // half of the super-block, first l of the lane's 8
    if (live && n_rows > 0) {
        for (int sb = q; sb < a.n_sb; sb += 4) {
            // activations of groups g = 0..3: elements 256 sb + 128 h2 + 32 g + o .. + 7, q8_1 block 8 sb + 4 h2 + g
            int2 xv[4];
            float xd[4];
#pragma unroll
            for (int g = 0; g < 4; ++g) {
                xv[g] = *reinterpret_cast<const int2*>(xs.q + 256 * sb + 128 * h2 + 32 * g + o);
                xd[g] = xs.ds[8 * sb + 4 * h2 + g].x;
            }
#pragma unroll
            for (int i = 0; i < kRows; ++i) {
                if (i >= n_rows) break;
                const uint8_t* blk = rows + static_cast<size_t>(i) * a.row_bytes + static_cast<size_t>(sb) * 210;
                uint32_t ql0[2], ql1[2], qh[2];
#pragma unroll
                for (int k = 0; k < 2; ++k) {
                    ql0[k] = load_u32_a2(blk + 64 * h2 + o + 4 * k);
                    ql1[k] = load_u32_a2(blk + 64 * h2 + 32 + o + 4 * k);
                    qh[k] = load_u32_a2(blk + 128 + 32 * h2 + o + 4 * k);
                }
                const float d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(blk + 208));
                // sub-block (16 elements) of group g: 8 h2 + 2 g + (j % 4) / 2
                const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192 + 8 * h2 + (j % 4) / 2);
                float v = 0.f;
#pragma unroll
                for (int g = 0; g < 4; ++g) {
                    int s = 0;
#pragma unroll
                    for (int k = 0; k < 2; ++k) {
                        const uint32_t ql = g % 2 == 0 ? ql0[k] : ql1[k];
                        const uint32_t lo4 = g < 2 ? (ql & 0x0F0F0F0Fu) : ((ql >> 4) & 0x0F0F0F0Fu);
                        const uint32_t hi2 = ((qh[k] >> (2 * g)) & 0x03030303u) << 4;
                        const int w = static_cast<int>(__vsub4(lo4 | hi2, 0x20202020u));
                        s = __dp4a(w, k == 0 ? xv[g].x : xv[g].y, s);
                    }
                    v += xd[g] * static_cast<float>(sc[2 * g] * s);
                }
                acc[i] += d * v;
            }
        }
    }
    store_rows(a, so, r0, acc, live, lane);
}

// -1: not decided yet (GGUF_CUDA_MMVQ=wide turns it on at first use), 0 off, 1 on
std::atomic<int> g_wide{-1};

}  // namespace

bool mmvq_wide_enabled() {
    int s = g_wide.load(std::memory_order_relaxed);
    if (s < 0) {
        const char* v = std::getenv("GGUF_CUDA_MMVQ");
        s = v && std::strcmp(v, "wide") == 0 ? 1 : 0;
        int expected = -1;
        g_wide.compare_exchange_strong(expected, s);
        s = g_wide.load(std::memory_order_relaxed);
    }
    return s == 1;
}

void set_mmvq_wide(bool on) { g_wide.store(on ? 1 : 0); }

bool mmvq_wide_takes(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in) {
    if (!mmvq_wide_enabled() || n_in <= 0 || n_in % 256 != 0 || n_in > kMaxIn) return false;
    const uintptr_t base = reinterpret_cast<uintptr_t>(W);
    const size_t x_bytes = (x_stage_bytes(n_in) + 15) / 16 * 16;
    if (type == GgmlType::Q4_K) {
        // every super-block 16-byte aligned
        return row_bytes == static_cast<size_t>(n_in / 256) * 144 && base % 16 == 0 && mat_stride % 16 == 0 &&
               x_bytes <= kSmemCap;
    }
    if (type == GgmlType::Q6_K) {
        // a warp's kRows rows are one chunk of a multiple of 16 bytes (4 where the base is only 4-aligned)
        return row_bytes == static_cast<size_t>(n_in / 256) * 210 && base % 4 == 0 && mat_stride % 4 == 0 &&
               x_bytes + kRows * row_bytes <= kSmemCap;
    }
    return false;
}

namespace {

bool launch_wide(GgmlType type, const void* W, const void* W2, size_t row_bytes, size_t mat_stride, int64_t n_in,
                 int64_t n_out, const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, float* y2,
                 int64_t ldy, cudaStream_t stream) {
    if (!mmvq_wide_takes(type, W, row_bytes, ids ? mat_stride : 0, n_in)) return false;
    if (W2 && !mmvq_wide_takes(type, W2, row_bytes, ids ? mat_stride : 0, n_in)) return false;
    if (n_out <= 0 || n_slots <= 0) return true;
    if (static_cast<int64_t>(n_slots) * (W2 ? 2 : 1) > 65535) throw Error("mmvq_wide: more than 65535 slots");
    WideArgs a{};
    a.W = static_cast<const uint8_t*>(W);
    a.row_bytes = row_bytes;
    a.mat_stride = mat_stride;
    a.n_sb = static_cast<int>(n_in / 256);
    a.n_out = n_out;
    a.x = static_cast<const BlockQ8_1*>(xq);
    a.x_row_blocks = n_in / 32;
    a.x_group = std::max(1, x_group);
    a.ids = ids;
    a.y = y;
    a.ldy = ldy;
    a.W2 = static_cast<const uint8_t*>(W2);
    a.y2 = y2;
    a.n_slots = n_slots;
    const unsigned grid_y = static_cast<unsigned>(n_slots * (W2 ? 2 : 1));
    const size_t x_bytes = (x_stage_bytes(n_in) + 15) / 16 * 16;
    if (type == GgmlType::Q4_K) {
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, int64_t{kWarpsQ4} * kRowsQ4)), grid_y);
        pdl_launch(mmvq_wide_q4k, grid, 32 * kWarpsQ4, x_bytes, stream)(a);
    } else {
        const size_t per_warp = kRows * row_bytes;
        const int warps = static_cast<int>(std::clamp<size_t>((kSmemCap - x_bytes) / per_warp, 1, 4));
        const bool aligned16 = reinterpret_cast<uintptr_t>(W) % 16 == 0 && reinterpret_cast<uintptr_t>(W2) % 16 == 0 &&
                               (ids ? mat_stride : 0) % 16 == 0;
        const dim3 grid(static_cast<unsigned>(ceil_div(n_out, int64_t{warps} * kRows)), grid_y);
        pdl_launch(mmvq_wide_q6k, grid, 32 * warps, x_bytes + warps * per_warp, stream)(a, aligned16 ? 16 : 4);
    }
    check_launch("mmvq_wide");
    return true;
}

}  // namespace

bool mmvq_wide(GgmlType type, const void* W, size_t row_bytes, size_t mat_stride, int64_t n_in, int64_t n_out,
               const void* xq, int x_group, const int32_t* ids, int n_slots, float* y, int64_t ldy, cudaStream_t stream) {
    return launch_wide(type, W, nullptr, row_bytes, mat_stride, n_in, n_out, xq, x_group, ids, n_slots, y, nullptr, ldy,
                       stream);
}

bool mmvq_wide_pair(GgmlType type, const void* Wa, const void* Wb, size_t row_bytes, size_t mat_stride, int64_t n_in,
                    int64_t n_out, const void* xq, int x_group, const int32_t* ids, int n_slots, float* ya, float* yb,
                    int64_t ldy, cudaStream_t stream) {
    return launch_wide(type, Wa, Wb, row_bytes, mat_stride, n_in, n_out, xq, x_group, ids, n_slots, ya, yb, ldy, stream);
}

}  // namespace runtime::cuda
