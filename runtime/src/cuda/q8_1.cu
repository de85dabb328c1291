// Activations to q8_1 (as blocks, or in the quad layout of the tensor-core kernel): one warp per
// 32-element block, each thread one element. d = max|x| / 127 in
// f32 quantizes (x / d rounded to nearest even, as the CPU's q8 paths do), and is stored as half. The
// experts' SwiGLU can run in the same pass (the value quantized is then the CPU's swiglu of gate and up).
#include <string>

#include "cuda/kernel_common.cuh"
#include "cuda/pdl.cuh"
#include "cuda/q8_1_block.cuh"
#include "cuda/swiglu_one.cuh"

namespace runtime::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

// One warp per block of 32 values; with `up`, the values are swiglu(x, up) (x the gate rows, both ld_x apart).
// With quads, block i goes to the quad layout (nb_out blocks a row, the padding ones zeros).
template <bool kQuads>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) quantize_q8_1_kernel(const float* x, const float* up, int64_t ld_x,
                                                                            int64_t nb, int64_t nb_out,
                                                                            int64_t n_blocks_total, void* out) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (i >= n_blocks_total) return;  // whole warps leave together
    const int lane = threadIdx.x % 32;
    const int64_t row = i / nb_out, b = i % nb_out;
    const int64_t at = row * ld_x + b * 32 + lane;
    const float v = b >= nb ? 0.f : up ? swiglu_one(x[at], up[at]) : x[at];
    if constexpr (kQuads) {
        quantize_block_q8_1_quad(v, lane, b, static_cast<BlockQ8_1Quad*>(out) + row * (nb_out / 4));
    } else {
        quantize_block_q8_1(v, lane, static_cast<BlockQ8_1*>(out)[i]);
    }
}

template <bool kQuads>
void launch_quantize(const float* x, const float* up, int64_t ld_x, int64_t n, int64_t n_rows, void* xq,
                     cudaStream_t stream, const char* what) {
    if (n <= 0 || n % 32 != 0) throw Error(std::string(what) + ": n " + std::to_string(n) + " is not a positive multiple of 32");
    if (ld_x < n) throw Error(std::string(what) + ": ld_x is smaller than n");
    if (n_rows <= 0) return;
    const int64_t nb = n / 32, nb_out = kQuads ? ceil_div(nb, 4) * 4 : nb;
    const int64_t total = n_rows * nb_out;
    pdl_launch(quantize_q8_1_kernel<kQuads>, static_cast<unsigned>(ceil_div(total, kWarpsPerBlock)), 32 * kWarpsPerBlock, 0,
               stream)(x, up, ld_x, nb, nb_out, total, xq);
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
