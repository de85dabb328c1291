// Weight units (quant_units.cuh) re-expressed per 32-element block for the tensor-core kernel: int8
// values q (8 words), a scale per 16-element half and a minimum per half, such that the block's weights
// are w = sc[h] * q - mn[h]. Formats with one scale per 32 store it twice; Q2_K folds its 4-bit
// sub-block scales into q (at most 15 * 3 = 45) and keeps its per-16 minimums; Q3_K and Q6_K keep
// per-16 scales (the kernel then runs two k16 products per block). Also the mma.sync wrappers.
#pragma once

#include <type_traits>

#include "cuda/quant_units.cuh"

namespace runtime::cuda::tiles {

template <class U>
struct Traits {
    static constexpr bool kPerHalf = false;  // sc[0] == sc[1]: one k32 product per block
    static constexpr bool kHasMin = false;
    static constexpr bool kMinPerHalf = false;  // mn[0] != mn[1] possible (else one product per block)
};
template <> struct Traits<units::Q4_1> { static constexpr bool kPerHalf = false, kHasMin = true, kMinPerHalf = false; };
template <> struct Traits<units::Q5_1> { static constexpr bool kPerHalf = false, kHasMin = true, kMinPerHalf = false; };
template <> struct Traits<units::Q4_K> { static constexpr bool kPerHalf = false, kHasMin = true, kMinPerHalf = false; };
template <> struct Traits<units::Q5_K> { static constexpr bool kPerHalf = false, kHasMin = true, kMinPerHalf = false; };
template <> struct Traits<units::Q2_K> { static constexpr bool kPerHalf = false, kHasMin = true, kMinPerHalf = true; };
template <> struct Traits<units::Q3_K> { static constexpr bool kPerHalf = true, kHasMin = false, kMinPerHalf = false; };
template <> struct Traits<units::Q6_K> { static constexpr bool kPerHalf = true, kHasMin = false, kMinPerHalf = false; };

// Block s (0 .. kElems/32 - 1) of a decoded unit: q words to q[0..7], scales and minimums to sc[0..1],
// mn[0..1].
template <class U>
__device__ __forceinline__ void export_block(const typename U::Regs& r, int s, int* q, float* sc, float* mn) {
    if constexpr (U::kElems == 32) {
#pragma unroll
        for (int w = 0; w < 8; ++w) q[w] = r.v[w];
        float d, m = 0.f;
        if constexpr (std::is_same_v<U, units::IQ4_XS>) d = r.dl;
        else d = r.d;
        if constexpr (std::is_same_v<U, units::Q4_1> || std::is_same_v<U, units::Q5_1>) m = -r.m;  // w = d q + m
        sc[0] = sc[1] = d;
        mn[0] = mn[1] = m;
    } else if constexpr (std::is_same_v<U, units::Q4_K> || std::is_same_v<U, units::Q5_K>) {
#pragma unroll
        for (int w = 0; w < 8; ++w) q[w] = r.v[8 * s + w];
        sc[0] = sc[1] = r.d * static_cast<float>(r.sc[s]);
        mn[0] = mn[1] = r.dmin * static_cast<float>(r.m[s]);
    } else if constexpr (std::is_same_v<U, units::Q2_K>) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int j = 2 * s + h;
            const int scale = (r.scales[j / 4] >> (8 * (j % 4))) & 0xff;
            // levels 0..3 times a scale <= 15: every byte stays below 128, no carries between bytes
#pragma unroll
            for (int w = 0; w < 4; ++w) q[4 * h + w] = r.v[8 * s + 4 * h + w] * (scale & 0xf);
            sc[h] = r.d;
            mn[h] = r.dmin * static_cast<float>(scale >> 4);
        }
    } else if constexpr (std::is_same_v<U, units::Q3_K>) {
#pragma unroll
        for (int w = 0; w < 8; ++w) q[w] = r.v[8 * s + w];
        sc[0] = r.d * static_cast<float>(r.sc[2 * s]);
        sc[1] = r.d * static_cast<float>(r.sc[2 * s + 1]);
        mn[0] = mn[1] = 0.f;
    } else {
        static_assert(std::is_same_v<U, units::Q6_K>);
#pragma unroll
        for (int w = 0; w < 8; ++w) q[w] = r.v[8 * s + w];
        sc[0] = r.d * static_cast<float>(static_cast<int8_t>(r.scales[s / 2] >> (16 * (s % 2))));
        sc[1] = r.d * static_cast<float>(static_cast<int8_t>(r.scales[s / 2] >> (16 * (s % 2) + 8)));
        mn[0] = mn[1] = 0.f;
    }
}

// D = A (16 x 32, row-major int8) * B (32 x 8, column-major int8), int32. Fragments (g = lane / 4,
// t = lane % 4): a[i] holds row g + 8 (i & 1), k = 16 (i >> 1) + 4t .. +3; b[i] holds column g,
// k = 16 i + 4t .. +3; d[i] holds row g + 8 (i >> 1), column 2t + (i & 1).
__device__ __forceinline__ void mma_k32(const int (&a)[4], const int (&b)[2], int (&d)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%10, %11, %12, %13};\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(0), "r"(0), "r"(0), "r"(0));
#else
    d[0] = d[1] = d[2] = d[3] = 0;  // never launched below sm_80 (the host picks the dp4a kernel)
#endif
}
// The same with k = 16: a[i] holds row g + 8 i, k = 4t .. +3; b holds column g, k = 4t .. +3.
__device__ __forceinline__ void mma_k16(int a0, int a1, int b, int (&d)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
                 "{%7, %8, %9, %10};\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a0), "r"(a1), "r"(b), "r"(0), "r"(0), "r"(0), "r"(0));
#else
    d[0] = d[1] = d[2] = d[3] = 0;
#endif
}

}  // namespace runtime::cuda::tiles
