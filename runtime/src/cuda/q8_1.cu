// Activations to q8_1: one warp per 32-element block, each thread one element. d = max|x| / 127 in
// f32 quantizes (x / d rounded to nearest even, as the CPU's q8 paths do), and is stored as half. The
// experts' SwiGLU can run in the same pass (the value quantized is then the CPU's swiglu of gate and up).
#include "cuda/pdl.cuh"
#include "cuda/kernel_common.cuh"
#include "cuda/q8_1_block.cuh"
#include "cuda/swiglu_one.cuh"

namespace runtime::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

// One warp per block of 32 values; with `up`, the values are swiglu(x, up) (x the gate rows, both ld_x apart).
__global__ void __launch_bounds__(32 * kWarpsPerBlock) quantize_q8_1_kernel(const float* x, const float* up, int64_t ld_x,
                                                                            int64_t nb, int64_t n_blocks_total,
                                                                            BlockQ8_1* out) {
    pdl_enter();  // before any memory an earlier kernel writes (pdl.cuh)
    const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (i >= n_blocks_total) return;  // whole warps leave together
    const int lane = threadIdx.x % 32;
    const int64_t row = i / nb, b = i % nb;
    const int64_t at = row * ld_x + b * 32 + lane;
    quantize_block_q8_1(up ? swiglu_one(x[at], up[at]) : x[at], lane, out[i]);
}

}  // namespace

size_t q8_1_row_bytes(int64_t n) { return static_cast<size_t>(n / 32) * sizeof(BlockQ8_1); }

void quantize_rows_q8_1(const float* x, int64_t ld_x, int64_t n, int64_t n_rows, void* xq, cudaStream_t stream) {
    if (n <= 0 || n % 32 != 0) throw Error("quantize_rows_q8_1: n " + std::to_string(n) + " is not a positive multiple of 32");
    if (ld_x < n) throw Error("quantize_rows_q8_1: ld_x is smaller than n");
    if (n_rows <= 0) return;
    const int64_t total = n_rows * (n / 32);
    pdl_launch(quantize_q8_1_kernel, static_cast<unsigned>(ceil_div(total, kWarpsPerBlock)), 32 * kWarpsPerBlock, 0, stream)(
        x, nullptr, ld_x, n / 32, total, static_cast<BlockQ8_1*>(xq));
    check_launch("quantize_rows_q8_1");
}

void swiglu_quantize_rows_q8_1(const float* gate, const float* up, int64_t n, int64_t n_rows, void* xq,
                               cudaStream_t stream) {
    if (n <= 0 || n % 32 != 0) {
        throw Error("swiglu_quantize_rows_q8_1: n " + std::to_string(n) + " is not a positive multiple of 32");
    }
    if (n_rows <= 0) return;
    const int64_t total = n_rows * (n / 32);
    pdl_launch(quantize_q8_1_kernel, static_cast<unsigned>(ceil_div(total, kWarpsPerBlock)), 32 * kWarpsPerBlock, 0, stream)(
        gate, up, n, n / 32, total, static_cast<BlockQ8_1*>(xq));
    check_launch("swiglu_quantize_rows_q8_1");
}

}  // namespace runtime::cuda
