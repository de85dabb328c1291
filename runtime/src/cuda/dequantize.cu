// Dequantization to f16 for the cuBLAS prefill path: every type libquant decodes, bit-exact with
// quant::dequantize_row rounded to f16. Each thread decodes 8 consecutive elements (one 16-byte store)
// with the CPU codec's float operations in the CPU's order; this file is compiled with -fmad=false so
// that no multiply and add fuse into an FMA the CPU does not do (which would change the rounding).
#include <mutex>

#include "cuda/kernel_common.cuh"

namespace runtime::cuda {

namespace {

using namespace quant;

// The IQ grids: data-dependent indices suit the L1 cache better than the constant cache.
__device__ uint64_t g_grid_iq2xxs[256];
__device__ uint64_t g_grid_iq2xs[512];
__device__ uint64_t g_grid_iq2s[1024];
__device__ uint64_t g_grid_iq1s[2048];
__device__ uint32_t g_grid_iq3xxs[256];
__device__ uint32_t g_grid_iq3s[512];
__device__ uint8_t g_signs_even_parity[128];
__constant__ uint8_t c_pow3[6] = {1, 3, 9, 27, 81, 243};

std::mutex g_tables_mutex;
bool g_tables_done[256] = {};

template <class T, size_t N>
void upload(const T (&symbol)[N], const std::array<T, N>& host, const char* what) {
    check_cuda(cudaMemcpyToSymbol(symbol, host.data(), sizeof(T) * N), what);
}

// f32 to f16 bits as quant::f32_to_f16: nearest even, overflow to infinity, NaN to a quiet NaN
// keeping only the sign.
__device__ __forceinline__ uint16_t f16_bits(float f) {
    if (isnan(f)) return static_cast<uint16_t>(((__float_as_uint(f) >> 16) & 0x8000u) | 0x7e00u);
    return __half_as_ushort(__float2half_rn(f));
}

// f16 bits to f32 as quant::f16_to_f32 (a NaN comes back quiet).
__device__ __forceinline__ float f16_value(uint16_t h) {
    const float f = half_bits_to_float(h);
    return isnan(f) ? __uint_as_float(__float_as_uint(f) | 0x400000u) : f;
}

__device__ __forceinline__ float flip_sign(float v, int bit) { return __uint_as_float(__float_as_uint(v) ^ (static_cast<uint32_t>(bit) << 31)); }

// Each decode writes elements 8g .. 8g+7 of block `b` into y.
template <GgmlType T>
struct Dec;

// Legacy nibble layout: element j < 16 in the low nibble of qs[j], j >= 16 in the high nibble of qs[j-16].
__device__ __forceinline__ int nibble(const uint8_t* qs, int e) { return e < 16 ? qs[e] & 0xf : qs[e - 16] >> 4; }
__device__ __forceinline__ int bit5(const uint8_t* qh, int e) {
    const uint32_t h = qh[0] | qh[1] << 8 | qh[2] << 16 | static_cast<uint32_t>(qh[3]) << 24;
    return (h >> e) & 1;
}

template <> struct Dec<GgmlType::Q4_0> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockQ4_0);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ4_0*>(p);
        const float d = f16_value(b.d);
        for (int j = 0; j < 8; ++j) y[j] = static_cast<float>(nibble(b.qs, 8 * g + j) - 8) * d;
    }
};
template <> struct Dec<GgmlType::Q4_1> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockQ4_1);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ4_1*>(p);
        const float d = f16_value(b.d), m = f16_value(b.m);
        for (int j = 0; j < 8; ++j) y[j] = static_cast<float>(nibble(b.qs, 8 * g + j)) * d + m;
    }
};
template <> struct Dec<GgmlType::Q5_0> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockQ5_0);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ5_0*>(p);
        const float d = f16_value(b.d);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j;
            y[j] = static_cast<float>((nibble(b.qs, e) | bit5(b.qh, e) << 4) - 16) * d;
        }
    }
};
template <> struct Dec<GgmlType::Q5_1> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockQ5_1);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ5_1*>(p);
        const float d = f16_value(b.d), m = f16_value(b.m);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j;
            y[j] = static_cast<float>(nibble(b.qs, e) | bit5(b.qh, e) << 4) * d + m;
        }
    }
};
template <> struct Dec<GgmlType::Q8_0> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockQ8_0);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ8_0*>(p);
        const float d = f16_value(b.d);
        for (int j = 0; j < 8; ++j) y[j] = static_cast<float>(b.qs[8 * g + j]) * d;
    }
};
template <> struct Dec<GgmlType::IQ4_NL> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockIQ4NL);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ4NL*>(p);
        const float d = f16_value(b.d);
        for (int j = 0; j < 8; ++j) y[j] = d * static_cast<float>(table_value(c_iq4nl_words, nibble(b.qs, 8 * g + j)));
    }
};
template <> struct Dec<GgmlType::MXFP4> {
    static constexpr int kElems = 32, kBytes = sizeof(BlockMXFP4);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockMXFP4*>(p);
        const float d = e8m0_to_float_half(b.e);
        for (int j = 0; j < 8; ++j) y[j] = static_cast<float>(table_value(c_mxfp4_words, nibble(b.qs, 8 * g + j))) * d;
    }
};

// --- K-quants (element e = 8g + j of the super-block) ----------------------------------------------------

template <> struct Dec<GgmlType::Q2_K> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockQ2_K);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ2_K*>(p);
        const float d = f16_value(b.d), min = f16_value(b.dmin);
        const int sc = b.scales[g / 2];  // 16-element sub-block (8g) / 16
        const float dl = d * static_cast<float>(sc & 0xf), ml = min * static_cast<float>(sc >> 4);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j, c = e / 128, s = e % 128 / 32, l = e % 32;
            const int level = (b.qs[32 * c + l] >> (2 * s)) & 3;
            y[j] = dl * static_cast<float>(level) - ml;
        }
    }
};
template <> struct Dec<GgmlType::Q3_K> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockQ3_K);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ3_K*>(p);
        const int jsb = g / 2;  // sub-block of 16 (unpack_q3_k_scales)
        const int low = jsb < 8 ? b.scales[jsb] & 0xf : b.scales[jsb - 8] >> 4;
        const int high = (b.scales[8 + jsb % 4] >> (2 * (jsb / 4))) & 3;
        const int scale = static_cast<int8_t>((low | (high << 4)) - 32);
        const float dl = f16_value(b.d) * static_cast<float>(scale);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j, c = e / 128, s = e % 128 / 32, l = e % 32;
            const int level = ((b.qs[32 * c + l] >> (2 * s)) & 3) - 4 + 4 * ((b.hmask[l] >> (4 * c + s)) & 1);
            y[j] = dl * static_cast<float>(level);
        }
    }
};
// Q4_K / Q5_K: sub-block j of 32, scale and min as unpack_scale_min_k4.
__device__ __forceinline__ void scale_min(const uint8_t* q, int j, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}
template <> struct Dec<GgmlType::Q4_K> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockQ4_K);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ4_K*>(p);
        const int jsb = g / 4;
        int sc, m;
        scale_min(b.scales, jsb, sc, m);
        const float dl = f16_value(b.d) * static_cast<float>(sc), ml = f16_value(b.dmin) * static_cast<float>(m);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j, c = e / 64, l = e % 32;
            const int level = e % 64 < 32 ? b.qs[32 * c + l] & 0xf : b.qs[32 * c + l] >> 4;
            y[j] = dl * static_cast<float>(level) - ml;
        }
    }
};
template <> struct Dec<GgmlType::Q5_K> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockQ5_K);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ5_K*>(p);
        const int jsb = g / 4;
        int sc, m;
        scale_min(b.scales, jsb, sc, m);
        const float dl = f16_value(b.d) * static_cast<float>(sc), ml = f16_value(b.dmin) * static_cast<float>(m);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j, c = e / 64, l = e % 32, hi = e % 64 / 32;
            const int level = (hi ? b.qs[32 * c + l] >> 4 : b.qs[32 * c + l] & 0xf) | (((b.qh[l] >> (2 * c + hi)) & 1) << 4);
            y[j] = dl * static_cast<float>(level) - ml;
        }
    }
};
template <> struct Dec<GgmlType::Q6_K> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockQ6_K);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockQ6_K*>(p);
        const float d = f16_value(b.d);
        const float ds = d * static_cast<float>(b.scales[g / 2]);  // CPU: (d * scale) * level
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j, h = e / 128, quarter = e % 128 / 32, l = e % 32;
            const uint8_t ql = b.ql[64 * h + 32 * (quarter & 1) + l];
            const int low = quarter < 2 ? ql & 0xf : ql >> 4;
            const int high = (b.qh[32 * h + l] >> (2 * quarter)) & 3;
            y[j] = ds * static_cast<float>((low | (high << 4)) - 32);
        }
    }
};
template <> struct Dec<GgmlType::IQ4_XS> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ4XS);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ4XS*>(p);
        const int ib = g / 4;
        const int lo = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf, hi = (b.scales_h >> (2 * ib)) & 3;
        const float dl = f16_value(b.d) * static_cast<float>((lo | (hi << 4)) - 32);
        for (int j = 0; j < 8; ++j) {
            const int e = (8 * g + j) % 32;
            y[j] = dl * static_cast<float>(table_value(c_iq4nl_words, nibble(b.qs + 16 * ib, e)));
        }
    }
};

// --- ternary ------------------------------------------------------------------------------------------

__device__ __forceinline__ int tq1_trit(uint8_t q, int n) {
    const uint8_t shifted = static_cast<uint8_t>(q * c_pow3[n]);
    return (shifted * 3) >> 8;
}
template <> struct Dec<GgmlType::TQ1_0> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockTQ1_0);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockTQ1_0*>(p);
        const float d = f16_value(b.d);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j;
            int t;
            if (e < 160) t = tq1_trit(b.qs[e % 32], e / 32);
            else if (e < 240) t = tq1_trit(b.qs[32 + (e - 160) % 16], (e - 160) / 16);
            else t = tq1_trit(b.qh[(e - 240) % 4], (e - 240) / 4);
            y[j] = static_cast<float>(t - 1) * d;
        }
    }
};
template <> struct Dec<GgmlType::TQ2_0> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockTQ2_0);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockTQ2_0*>(p);
        const float d = f16_value(b.d);
        for (int j = 0; j < 8; ++j) {
            const int e = 8 * g + j, h = e / 128, l = e % 128 / 32, m = e % 32;
            const int t = (b.qs[32 * h + m] >> (2 * l)) & 3;
            y[j] = static_cast<float>(t - 1) * d;
        }
    }
};

// --- grid formats: group g of 8 is grid point l = g % 4 of 32-block ib = g / 4 ------------------------------

// 8 values of grid point `point` (byte coordinates) at scale db with sign bits `signs`.
__device__ __forceinline__ void emit8(uint64_t point, int signs, float db, float* y) {
    for (int j = 0; j < 8; ++j) y[j] = flip_sign(db * static_cast<float>((point >> (8 * j)) & 0xff), (signs >> j) & 1);
}
__device__ __forceinline__ uint32_t u32_from_u16(const uint16_t* q) { return q[0] | static_cast<uint32_t>(q[1]) << 16; }

template <> struct Dec<GgmlType::IQ2_XXS> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ2XXS);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ2XXS*>(p);
        const int ib = g / 4, l = g % 4;
        const uint32_t grid = u32_from_u16(b.qs + 4 * ib), aux = u32_from_u16(b.qs + 4 * ib + 2);
        const float db = f16_value(b.d) * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
        emit8(g_grid_iq2xxs[(grid >> (8 * l)) & 0xff], g_signs_even_parity[(aux >> (7 * l)) & 127], db, y);
    }
};
template <> struct Dec<GgmlType::IQ2_XS> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ2XS);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ2XS*>(p);
        const int ib = g / 4, l = g % 4;
        const int sc = l < 2 ? b.scales[ib] & 0xf : b.scales[ib] >> 4;
        const float db = f16_value(b.d) * (0.5f + static_cast<float>(sc)) * 0.25f;
        const uint16_t q = b.qs[g];
        emit8(g_grid_iq2xs[q & 511], g_signs_even_parity[q >> 9], db, y);
    }
};
template <> struct Dec<GgmlType::IQ2_S> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ2S);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ2S*>(p);
        const int ib = g / 4, l = g % 4;
        const int sc = l < 2 ? b.scales[ib] & 0xf : b.scales[ib] >> 4;
        const float db = f16_value(b.d) * (0.5f + static_cast<float>(sc)) * 0.25f;
        const int index = b.qs[g] | ((b.qh[ib] << (8 - 2 * l)) & 0x300);
        emit8(g_grid_iq2s[index], b.qs[kQKK / 8 + g], db, y);
    }
};
template <> struct Dec<GgmlType::IQ3_XXS> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ3XXS);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ3XXS*>(p);
        const int ib = g / 4, l = g % 4;
        const uint8_t* a = b.qs + kQKK / 4 + 4 * ib;
        const uint32_t aux = a[0] | a[1] << 8 | a[2] << 16 | static_cast<uint32_t>(a[3]) << 24;
        const float db = f16_value(b.d) * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
        const uint64_t point = g_grid_iq3xxs[b.qs[8 * ib + 2 * l]] | static_cast<uint64_t>(g_grid_iq3xxs[b.qs[8 * ib + 2 * l + 1]]) << 32;
        emit8(point, g_signs_even_parity[(aux >> (7 * l)) & 127], db, y);
    }
};
template <> struct Dec<GgmlType::IQ3_S> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ3S);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ3S*>(p);
        const int ib = g / 4, l = g % 4;
        const int sc = (b.scales[ib / 2] >> (4 * (ib % 2))) & 0xf;
        const float db = f16_value(b.d) * static_cast<float>(1 + 2 * sc);
        const uint8_t* qs = b.qs + 8 * ib;
        const int qh = b.qh[ib];
        const int i0 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
        const int i1 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        emit8(g_grid_iq3s[i0] | static_cast<uint64_t>(g_grid_iq3s[i1]) << 32, b.signs[4 * ib + l], db, y);
    }
};
// IQ1: value = dl * (coordinate + delta), coordinates int8 -1/0/+1.
__device__ __forceinline__ void emit8_iq1(uint64_t point, float dl, float delta, float* y) {
    for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(static_cast<int8_t>((point >> (8 * j)) & 0xff)) + delta);
}
template <> struct Dec<GgmlType::IQ1_S> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ1S);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ1S*>(p);
        const int ib = g / 4, l = g % 4;
        const int qh = b.qh[ib];
        const float dl = f16_value(b.d) * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
        const float delta = qh & 0x8000 ? -kDeltaIQ1 : kDeltaIQ1;
        emit8_iq1(g_grid_iq1s[b.qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8], dl, delta, y);
    }
};
template <> struct Dec<GgmlType::IQ1_M> {
    static constexpr int kElems = 256, kBytes = sizeof(BlockIQ1M);
    static __device__ void run(const uint8_t* p, int g, float* y) {
        const auto& b = *reinterpret_cast<const BlockIQ1M*>(p);
        const auto word = [&](int i) { return static_cast<uint32_t>(b.scales[2 * i] | b.scales[2 * i + 1] << 8); };
        const uint32_t w0 = word(0), w1 = word(1), w2 = word(2), w3 = word(3);
        const uint16_t dbits = static_cast<uint16_t>((w0 >> 12) | ((w1 >> 8) & 0x00f0) | ((w2 >> 4) & 0x0f00) | (w3 & 0xf000));
        const float d = f16_value(dbits);
        const int h = b.qh[g / 2] >> (4 * (g % 2));
        const uint32_t sc = word(g / 8);  // scales of 16-element groups 4(g/8) .. 4(g/8)+3
        const float dl = d * static_cast<float>(2 * ((sc >> (3 * (g / 2 % 4))) & 7) + 1);
        const float delta = h & 8 ? -kDeltaIQ1 : kDeltaIQ1;
        emit8_iq1(g_grid_iq1s[b.qs[g] | (h & 7) << 8], dl, delta, y);
    }
};

// --- float types ----------------------------------------------------------------------------------------

template <> struct Dec<GgmlType::F32> {
    static constexpr int kElems = 8, kBytes = 32;
    static __device__ void run(const uint8_t* p, int, float* y) {
        for (int j = 0; j < 8; ++j) y[j] = reinterpret_cast<const float*>(p)[j];
    }
};
template <> struct Dec<GgmlType::F16> {
    static constexpr int kElems = 8, kBytes = 16;
    static __device__ void run(const uint8_t* p, int, float* y) {
        for (int j = 0; j < 8; ++j) y[j] = f16_value(reinterpret_cast<const uint16_t*>(p)[j]);
    }
};
template <> struct Dec<GgmlType::BF16> {
    static constexpr int kElems = 8, kBytes = 16;
    static __device__ void run(const uint8_t* p, int, float* y) {
        for (int j = 0; j < 8; ++j) y[j] = __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(p)[j]) << 16);
    }
};

// --- the kernel ----------------------------------------------------------------------------------------

template <GgmlType T>
__global__ void __launch_bounds__(256) dequantize_kernel(const uint8_t* W, size_t row_bytes, int64_t groups_per_row,
                                                         int64_t n_groups, uint16_t* out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_groups) return;
    const int64_t row = i / groups_per_row, gr = i % groups_per_row;
    constexpr int kGroupsPerBlock = Dec<T>::kElems / 8;
    float v[8];
    Dec<T>::run(W + row * row_bytes + (gr / kGroupsPerBlock) * Dec<T>::kBytes, static_cast<int>(gr % kGroupsPerBlock), v);
    uint4 packed;
    packed.x = f16_bits(v[0]) | static_cast<uint32_t>(f16_bits(v[1])) << 16;
    packed.y = f16_bits(v[2]) | static_cast<uint32_t>(f16_bits(v[3])) << 16;
    packed.z = f16_bits(v[4]) | static_cast<uint32_t>(f16_bits(v[5])) << 16;
    packed.w = f16_bits(v[6]) | static_cast<uint32_t>(f16_bits(v[7])) << 16;
    reinterpret_cast<uint4*>(out)[i] = packed;  // rows are n_in halves apart: group i is at 8 * i
}

template <class F>
bool dispatch_dequant(GgmlType type, F&& f) {
    switch (type) {
#define GGUF_DEQ_CASE(T) \
    case GgmlType::T: f(std::integral_constant<GgmlType, GgmlType::T>{}); return true;
        GGUF_DEQ_CASE(F32) GGUF_DEQ_CASE(F16) GGUF_DEQ_CASE(BF16)
        GGUF_DEQ_CASE(Q4_0) GGUF_DEQ_CASE(Q4_1) GGUF_DEQ_CASE(Q5_0) GGUF_DEQ_CASE(Q5_1) GGUF_DEQ_CASE(Q8_0)
        GGUF_DEQ_CASE(Q2_K) GGUF_DEQ_CASE(Q3_K) GGUF_DEQ_CASE(Q4_K) GGUF_DEQ_CASE(Q5_K) GGUF_DEQ_CASE(Q6_K)
        GGUF_DEQ_CASE(IQ4_NL) GGUF_DEQ_CASE(IQ4_XS) GGUF_DEQ_CASE(MXFP4) GGUF_DEQ_CASE(TQ1_0) GGUF_DEQ_CASE(TQ2_0)
        GGUF_DEQ_CASE(IQ2_XXS) GGUF_DEQ_CASE(IQ2_XS) GGUF_DEQ_CASE(IQ2_S) GGUF_DEQ_CASE(IQ3_XXS) GGUF_DEQ_CASE(IQ3_S)
        GGUF_DEQ_CASE(IQ1_S) GGUF_DEQ_CASE(IQ1_M)
#undef GGUF_DEQ_CASE
        default: return false;
    }
}

bool uses_grids(GgmlType type) {
    switch (type) {
        case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S: case GgmlType::IQ3_XXS:
        case GgmlType::IQ3_S: case GgmlType::IQ1_S: case GgmlType::IQ1_M: return true;
        default: return false;
    }
}

bool tables_ready_on_current_device() {
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    std::lock_guard lock(g_tables_mutex);
    return device >= 0 && device < 256 && g_tables_done[device];
}

}  // namespace

void prepare_device_tables() {
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    if (device < 0 || device >= 256) throw Error("prepare_device_tables: device index out of range");
    std::lock_guard lock(g_tables_mutex);
    if (g_tables_done[device]) return;
    upload(g_grid_iq2xxs, kGridIQ2XXS, "IQ2_XXS grid upload");
    upload(g_grid_iq2xs, kGridIQ2XS, "IQ2_XS grid upload");
    upload(g_grid_iq2s, kGridIQ2S, "IQ2_S grid upload");
    upload(g_grid_iq1s, kGridIQ1S, "IQ1_S grid upload");
    upload(g_grid_iq3xxs, kGridIQ3XXS, "IQ3_XXS grid upload");
    upload(g_grid_iq3s, kGridIQ3S, "IQ3_S grid upload");
    upload(g_signs_even_parity, kSignsEvenParity, "sign table upload");
    g_tables_done[device] = true;
}

bool dequant_supported(GgmlType type) {
    return dispatch_dequant(type, [](auto) {});
}

void dequantize_rows_f16(GgmlType type, const void* W, size_t row_bytes, int64_t n_in, int64_t n_rows, void* out_f16,
                         cudaStream_t stream) {
    if (!dequant_supported(type)) throw Error("dequantize_rows_f16: type " + std::to_string(static_cast<int>(type)) + " is not supported");
    if (n_in <= 0 || n_in % 8 != 0) throw Error("dequantize_rows_f16: n_in must be a positive multiple of 8");
    if (reinterpret_cast<uintptr_t>(out_f16) % 16 != 0) throw Error("dequantize_rows_f16: the output must be 16-byte aligned");
    if (n_rows <= 0) return;
    if (uses_grids(type) && !tables_ready_on_current_device()) {
        cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
        check_cuda(cudaStreamIsCapturing(stream, &capture), "cudaStreamIsCapturing");
        if (capture != cudaStreamCaptureStatusNone) {
            throw Error("dequantize_rows_f16: call prepare_device_tables() before capturing IQ1/IQ2/IQ3 dequantization");
        }
        prepare_device_tables();
    }
    dispatch_dequant(type, [&](auto tag) {
        constexpr GgmlType T = decltype(tag)::value;
        if (n_in % Dec<T>::kElems != 0) {
            throw Error("dequantize_rows_f16: n_in " + std::to_string(n_in) + " is not a multiple of the block size " +
                        std::to_string(Dec<T>::kElems));
        }
        const int64_t groups_per_row = n_in / 8, n_groups = groups_per_row * n_rows;
        dequantize_kernel<T><<<static_cast<unsigned>(ceil_div(n_groups, 256)), 256, 0, stream>>>(
            static_cast<const uint8_t*>(W), row_bytes, groups_per_row, n_groups, static_cast<uint16_t*>(out_f16));
    });
    check_launch("dequantize_rows_f16");
}

}  // namespace runtime::cuda
