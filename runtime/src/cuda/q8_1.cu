// Activations to q8_1 (as blocks, or in the quad layout of the tensor-core kernel): one warp per 32-element
// block, or per four of them for batches. d = max|x| / 127 in
// f32 quantizes (x / d rounded to nearest even, as the CPU's q8 paths do), and is stored as half. The
// experts' SwiGLU can run in the same pass (the value quantized is then the CPU's swiglu of gate and up).
#include <cstdint>
#include <string>

#include "cuda/kernel_common.cuh"
#include "cuda/pdl.cuh"
#include "cuda/q8_1_block.cuh"
#include "cuda/swiglu_one.cuh"

namespace runtime::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kQuarterRows = 16;  // from this many rows on, four blocks a warp (quantize_q8_1_kernel)

// One warp per V consecutive blocks of 32 values (block i = V * warp + lane / (32 / V)), each lane V of
// them. V = 4 for batches: every load issued at once, 16 bytes a lane where rows are 16-byte aligned (one
// value a block per lane left a warp one load in flight: 0.8 TB/s for a prompt's SwiGLU of 4096 expert
// rows on the H200, 21.7 us instead of 34.5 with V = 4). V = 1 for a few rows (decode), where its four
// divisions a lane in a row cost more than the load (tg64 289.5 -> 285.6). With `up`, the values are
// swiglu(x, up) (x the gate rows, both ld_x apart). With quads, block i goes to the quad layout (nb_out
// blocks a row, the padding ones zeros).
template <bool kQuads, int V>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) quantize_q8_1_kernel(const float* x, const float* up, int64_t ld_x,
                                                                            int64_t nb, int64_t nb_out,
                                                                            int64_t n_blocks_total, bool aligned, void* out) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    constexpr int kLanes = 32 / V;
    const int64_t i0 = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32) * V;
    if (i0 >= n_blocks_total) return;  // whole warps leave together
    const int lane = threadIdx.x % 32, part = lane % kLanes;
    const int64_t i = i0 + lane / kLanes;
    const bool live = i < n_blocks_total;
    const int64_t row = i / nb_out, b = i % nb_out;
    float e[V] = {};
    if (live && b < nb) {
        const int64_t at = row * ld_x + b * 32 + V * part;
        float g[V], u[V] = {};
        if constexpr (V == 4) {
            if (aligned) {
                const float4 g4 = *reinterpret_cast<const float4*>(x + at);
                g[0] = g4.x, g[1] = g4.y, g[2] = g4.z, g[3] = g4.w;
                if (up) {
                    const float4 u4 = *reinterpret_cast<const float4*>(up + at);
                    u[0] = u4.x, u[1] = u4.y, u[2] = u4.z, u[3] = u4.w;
                }
            } else {
#pragma unroll
                for (int k = 0; k < V; ++k) {
                    g[k] = x[at + k];
                    if (up) u[k] = up[at + k];
                }
            }
        } else {
            g[0] = x[at];
            if (up) u[0] = up[at];
        }
#pragma unroll
        for (int k = 0; k < V; ++k) e[k] = up ? swiglu_one(g[k], u[k]) : g[k];
    }
    const Q8_1Part r = quantize_part_q8_1<V>(e);
    if (!live) return;
    int8_t* qs;
    uint32_t* ds;
    if constexpr (kQuads) {
        BlockQ8_1Quad& quad = static_cast<BlockQ8_1Quad*>(out)[row * (nb_out / 4) + b / 4];
        qs = quad.qs + (b % 4) * 32;
        ds = &quad.ds[b % 4];
    } else {
        BlockQ8_1& blk = static_cast<BlockQ8_1*>(out)[i];
        qs = blk.qs;
        ds = reinterpret_cast<uint32_t*>(&blk);
    }
    if constexpr (V == 4) reinterpret_cast<uint32_t*>(qs)[part] = r.q;
    else qs[part] = static_cast<int8_t>(r.q);
    if (part == 0) *ds = r.ds;
}

template <bool kQuads>
void launch_quantize(const float* x, const float* up, int64_t ld_x, int64_t n, int64_t n_rows, void* xq,
                     cudaStream_t stream, const char* what) {
    if (n <= 0 || n % 32 != 0) throw Error(std::string(what) + ": n " + std::to_string(n) + " is not a positive multiple of 32");
    if (ld_x < n) throw Error(std::string(what) + ": ld_x is smaller than n");
    if (n_rows <= 0) return;
    const int64_t nb = n / 32, nb_out = kQuads ? ceil_div(nb, 4) * 4 : nb;
    const int64_t total = n_rows * nb_out;
    const bool aligned = ld_x % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                         (up == nullptr || reinterpret_cast<uintptr_t>(up) % 16 == 0);
    if (n_rows >= kQuarterRows) {
        pdl_launch(quantize_q8_1_kernel<kQuads, 4>, static_cast<unsigned>(ceil_div(total, 4 * kWarpsPerBlock)),
                   32 * kWarpsPerBlock, 0, stream)(x, up, ld_x, nb, nb_out, total, aligned, xq);
    } else {
        pdl_launch(quantize_q8_1_kernel<kQuads, 1>, static_cast<unsigned>(ceil_div(total, kWarpsPerBlock)), 32 * kWarpsPerBlock,
                   0, stream)(x, up, ld_x, nb, nb_out, total, aligned, xq);
    }
    check_launch(what);
}

}  // namespace

size_t q8_1_row_bytes(int64_t n) { return static_cast<size_t>(n / 32) * sizeof(BlockQ8_1); }
size_t q8_1_quad_row_bytes(int64_t n) { return static_cast<size_t>(ceil_div(n, 128)) * sizeof(BlockQ8_1Quad); }

void quantize_rows_q8_1(const float* x, int64_t ld_x, int64_t n, int64_t n_rows, void* xq, cudaStream_t stream) {
    launch_quantize<false>(x, nullptr, ld_x, n, n_rows, xq, stream, "quantize_rows_q8_1");
}

void swiglu_quantize_rows_q8_1(const float* gate, const float* up, int64_t n, int64_t n_rows, void* xq,
                               cudaStream_t stream) {
    launch_quantize<false>(gate, up, n, n, n_rows, xq, stream, "swiglu_quantize_rows_q8_1");
}

void quantize_rows_q8_1_quads(const float* x, int64_t ld_x, int64_t n, int64_t n_rows, void* xq, cudaStream_t stream) {
    launch_quantize<true>(x, nullptr, ld_x, n, n_rows, xq, stream, "quantize_rows_q8_1_quads");
}

void swiglu_quantize_rows_q8_1_quads(const float* gate, const float* up, int64_t n, int64_t n_rows, void* xq,
                                     cudaStream_t stream) {
    launch_quantize<true>(gate, up, n, n, n_rows, xq, stream, "swiglu_quantize_rows_q8_1_quads");
}

}  // namespace runtime::cuda
