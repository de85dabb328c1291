// Per-head steps shared by the Q/K kernels (rope.cu) and the fused Q/K + cache-store kernel (kv_store.cu),
// so that the fused kernel computes bit for bit what the separate launches compute.
#pragma once

#include "cuda/op_common.cuh"

namespace runtime::cuda::detail {

// One head of head_dim floats by one warp (this thread is `lane`), in place: the norm (where w is given;
// as rms_norm_heads) then the rotation of its first 2 * half dimensions by position pos (as rope_kernel).
__device__ __forceinline__ void norm_rope_head(float* hd, const float* w, int head_dim, float eps, int half, bool neox,
                                               double pos, const double* inv_freq, int lane) {
    if (w) {
        double ss = 0.0;
        for (int i = lane; i < head_dim; i += 32) ss += static_cast<double>(hd[i]) * hd[i];
        for (int o = 16; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(head_dim) + eps));
        for (int i = lane; i < head_dim; i += 32) hd[i] = __fmul_rn(__fmul_rn(hd[i], scale), w[i]);
        __syncwarp();  // the rotation reads elements other lanes wrote
    }
    for (int i = lane; i < half; i += 32) {
        double sd, cd;
        sincos(pos * inv_freq[i], &sd, &cd);
        const float c = static_cast<float>(cd), s = static_cast<float>(sd);
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const float x0 = hd[i0], x1 = hd[i1];
        hd[i0] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        hd[i1] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
}

// As libquant's q8_0_quantize: d = amax / 127, q = round half away from zero of x * (1/d).
__device__ __forceinline__ void quantize_q8_0(const float* x, quant::BlockQ8_0* y) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    y->d = float_to_half_bits(d);
    for (int j = 0; j < 32; ++j) y->qs[j] = static_cast<int8_t>(roundf(__fmul_rn(x[j], id)));
}

// As libquant's q4_0_quantize without imatrix: the value of largest magnitude (the first on ties) maps to
// level -8, d = max / -8, level = min(15, int(x * (1/d) + 8.5)).
__device__ __forceinline__ void quantize_q4_0(const float* x, quant::BlockQ4_0* y) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; ++j) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = __fdiv_rn(max, -8.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    y->d = float_to_half_bits(d);
    int L[32];
    for (int j = 0; j < 32; ++j) L[j] = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j], id), 8.5f)));
    for (int j = 0; j < 16; ++j) y->qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
}

// Unit u of a cache row of `type` (0 F32, 1 F16: an element; 8 Q8_0, else Q4_0: a block of 32) from x.
__device__ __forceinline__ void store_unit(int type, const float* x, int64_t u, uint8_t* row) {
    switch (type) {
        case 0: reinterpret_cast<float*>(row)[u] = x[u]; break;
        case 1: reinterpret_cast<uint16_t*>(row)[u] = float_to_half_bits(x[u]); break;
        case 8: quantize_q8_0(x + 32 * u, reinterpret_cast<quant::BlockQ8_0*>(row) + u); break;
        default: quantize_q4_0(x + 32 * u, reinterpret_cast<quant::BlockQ4_0*>(row) + u); break;
    }
}

}  // namespace runtime::cuda::detail
