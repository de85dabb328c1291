// Weight "units" for the int8 dot-product kernels (mmvq, mmq_ids): the span of a weight row one thread
// decodes at a time, turned into int8 words that line up with the words of the q8_1 activation blocks
// covering the same elements, plus the unit's scales. A unit is one 32-element block for the legacy
// formats, IQ4_NL, MXFP4 and IQ4_XS's 32-element sub-blocks, 64 elements (two sub-blocks sharing 32
// bytes of nibbles) for Q4_K and Q5_K, and half a super-block (128 elements sharing their 2-bit planes)
// for Q2_K, Q3_K and Q6_K. Units are numbered in element order, so unit u of a row starts at element
// u * kElems and meets activation blocks u * kElems / 32 onwards.
//
// Each Unit type has: kElems, kBlockBytes (bytes of the ggml block), kUnitsPerBlock, a register struct
// Regs, load(block, sub-unit, regs) and dot(regs, activations) returning the float dot of the unit with
// its activation blocks (ActPtr or ActRegs). Formulas follow the CPU codecs (libquant/src/*_quants.cpp).
#pragma once

#include "cuda/kernel_common.cuh"

namespace runtime::cuda::units {

constexpr uint32_t kLow4 = 0x0F0F0F0Fu;
constexpr uint32_t kLow2 = 0x03030303u;
constexpr uint32_t kBit0 = 0x01010101u;

// The activations a unit dots with: q8_1 blocks b = 0 .. kElems/32 - 1 from the unit's first one, read
// straight from memory (ActPtr) or from registers loaded once and shared by several weight rows (ActRegs).
struct ActPtr {
    const BlockQ8_1* p;
    __device__ __forceinline__ int word(int b, int w) const { return q8_1_word(p + b, w); }
    __device__ __forceinline__ float2 ds(int b) const { return q8_1_ds(p + b); }
};
template <int kBlocks>
struct ActRegs {
    int q[kBlocks][8];
    float2 d[kBlocks];
    __device__ __forceinline__ void load(const BlockQ8_1* p) {
#pragma unroll
        for (int b = 0; b < kBlocks; ++b) {
            d[b] = q8_1_ds(p + b);
#pragma unroll
            for (int w = 0; w < 8; ++w) q[b][w] = q8_1_word(p + b, w);
        }
    }
    __device__ __forceinline__ int word(int b, int w) const { return q[b][w]; }
    __device__ __forceinline__ float2 ds(int b) const { return d[b]; }
};

// Integer dot of `kWords` int8 words of a unit (v) with words first.. of activation block b.
template <int kWords, class X>
__device__ __forceinline__ int dot_words(const int* v, const X& x, int b, int first = 0) {
    int s = 0;
#pragma unroll
    for (int w = 0; w < kWords; ++w) s = __dp4a(v[w], x.word(b, first + w), s);
    return s;
}

// --- the 32-element blocks ---------------------------------------------------------------------------

struct Q4_0 {
    static constexpr int kElems = 32, kBlockBytes = 18, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        r.d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b));
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a2(b + 2 + 4 * k);
            r.v[k] = static_cast<int>(__vsub4(q & kLow4, 0x08080808u));          // elements 4k..4k+3
            r.v[k + 4] = static_cast<int>(__vsub4((q >> 4) & kLow4, 0x08080808u));  // elements 16+4k..
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * x.ds(0).x);
    }
};

struct Q4_1 {
    static constexpr int kElems = 32, kBlockBytes = 20, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d, m; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        const uint32_t dm = load_u32_a4(b);
        r.d = half_bits_to_float(static_cast<uint16_t>(dm & 0xffff));
        r.m = half_bits_to_float(static_cast<uint16_t>(dm >> 16));
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a4(b + 4 + 4 * k);
            r.v[k] = static_cast<int>(q & kLow4);
            r.v[k + 4] = static_cast<int>((q >> 4) & kLow4);
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        const float2 ds = x.ds(0);
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * ds.x) + r.m * ds.y;
    }
};

struct Q5_0 {
    static constexpr int kElems = 32, kBlockBytes = 22, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        r.d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b));
        const uint32_t qh = load_u32_a2(b + 2);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a2(b + 6 + 4 * k);
            r.v[k] = static_cast<int>(__vsub4((q & kLow4) | spread4_to_bit4(qh >> (4 * k)), 0x10101010u));
            r.v[k + 4] = static_cast<int>(__vsub4(((q >> 4) & kLow4) | spread4_to_bit4(qh >> (16 + 4 * k)), 0x10101010u));
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * x.ds(0).x);
    }
};

struct Q5_1 {
    static constexpr int kElems = 32, kBlockBytes = 24, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d, m; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        const uint32_t dm = load_u32_a4(b);
        r.d = half_bits_to_float(static_cast<uint16_t>(dm & 0xffff));
        r.m = half_bits_to_float(static_cast<uint16_t>(dm >> 16));
        const uint32_t qh = load_u32_a4(b + 4);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a4(b + 8 + 4 * k);
            r.v[k] = static_cast<int>((q & kLow4) | spread4_to_bit4(qh >> (4 * k)));
            r.v[k + 4] = static_cast<int>(((q >> 4) & kLow4) | spread4_to_bit4(qh >> (16 + 4 * k)));
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        const float2 ds = x.ds(0);
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * ds.x) + r.m * ds.y;
    }
};

struct Q8_0 {
    static constexpr int kElems = 32, kBlockBytes = 34, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        r.d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b));
#pragma unroll
        for (int k = 0; k < 8; ++k) r.v[k] = static_cast<int>(load_u32_a2(b + 2 + 4 * k));
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * x.ds(0).x);
    }
};

struct IQ4_NL {
    static constexpr int kElems = 32, kBlockBytes = 18, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        r.d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b));
        const uint32_t table[4] = {c_iq4nl_words[0], c_iq4nl_words[1], c_iq4nl_words[2], c_iq4nl_words[3]};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a2(b + 2 + 4 * k);
            r.v[k] = lookup16(q & kLow4, table);
            r.v[k + 4] = lookup16((q >> 4) & kLow4, table);
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * x.ds(0).x);
    }
};

struct MXFP4 {
    static constexpr int kElems = 32, kBlockBytes = 17, kUnitsPerBlock = 1;
    struct Regs { int v[8]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int, Regs& r) {
        r.d = e8m0_to_float_half(b[0]);
        const uint32_t table[4] = {c_mxfp4_words[0], c_mxfp4_words[1], c_mxfp4_words[2], c_mxfp4_words[3]};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a1(b + 1 + 4 * k);
            r.v[k] = lookup16(q & kLow4, table);
            r.v[k + 4] = lookup16((q >> 4) & kLow4, table);
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.d * x.ds(0).x);
    }
};

// --- the 256-element super-blocks --------------------------------------------------------------------

// Q4_K / Q5_K: 6-bit scale and min of sub-block j from the 12 packed bytes held as three words (the
// byte arithmetic of unpack_scale_min_k4 without indexing a local array).
__device__ __forceinline__ void scale_min_k4(int j, uint32_t w0, uint32_t w1, uint32_t w2, int& sc, int& m) {
    const int sh = 8 * (j & 3);
    const int b0 = (w0 >> sh) & 0xff, b1 = (w1 >> sh) & 0xff, b2 = (w2 >> sh) & 0xff;
    if (j < 4) {
        sc = b0 & 63;
        m = b1 & 63;
    } else {
        sc = (b2 & 0xf) | ((b0 >> 6) << 4);
        m = (b2 >> 4) | ((b1 >> 6) << 4);
    }
}

struct Q4_K {
    static constexpr int kElems = 64, kBlockBytes = 144, kUnitsPerBlock = 4;
    struct Regs { int v[16]; float d, dmin; int sc[2], m[2]; };
    static __device__ __forceinline__ void load(const uint8_t* b, int c, Regs& r) {
        // 16-byte loads where the block is so aligned (blocks of 144 bytes in rows of whole blocks: whenever
        // the tensor is), else words: the same values either way
        uint32_t h[4], q[8];
        if ((reinterpret_cast<uintptr_t>(b) & 15) == 0) {
            const uint4 hv = *reinterpret_cast<const uint4*>(b);
            const uint4 q0 = *reinterpret_cast<const uint4*>(b + 16 + 32 * c);
            const uint4 q1 = *reinterpret_cast<const uint4*>(b + 32 + 32 * c);
            h[0] = hv.x, h[1] = hv.y, h[2] = hv.z, h[3] = hv.w;
            q[0] = q0.x, q[1] = q0.y, q[2] = q0.z, q[3] = q0.w, q[4] = q1.x, q[5] = q1.y, q[6] = q1.z, q[7] = q1.w;
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k) h[k] = load_u32_a4(b + 4 * k);
#pragma unroll
            for (int k = 0; k < 8; ++k) q[k] = load_u32_a4(b + 16 + 32 * c + 4 * k);
        }
        r.d = half_bits_to_float(static_cast<uint16_t>(h[0] & 0xffff));
        r.dmin = half_bits_to_float(static_cast<uint16_t>(h[0] >> 16));
        scale_min_k4(2 * c, h[1], h[2], h[3], r.sc[0], r.m[0]);
        scale_min_k4(2 * c + 1, h[1], h[2], h[3], r.sc[1], r.m[1]);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            r.v[k] = static_cast<int>(q[k] & kLow4);
            r.v[8 + k] = static_cast<int>((q[k] >> 4) & kLow4);
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        const float2 ds0 = x.ds(0), ds1 = x.ds(1);
        const int s0 = dot_words<8>(r.v, x, 0), s1 = dot_words<8>(r.v + 8, x, 1);
        return r.d * (ds0.x * static_cast<float>(r.sc[0] * s0) + ds1.x * static_cast<float>(r.sc[1] * s1)) -
               r.dmin * (static_cast<float>(r.m[0]) * ds0.y + static_cast<float>(r.m[1]) * ds1.y);
    }
};

struct Q5_K {
    static constexpr int kElems = 64, kBlockBytes = 176, kUnitsPerBlock = 4;
    using Regs = Q4_K::Regs;
    static __device__ __forceinline__ void load(const uint8_t* b, int c, Regs& r) {
        const uint32_t dm = load_u32_a4(b);
        r.d = half_bits_to_float(static_cast<uint16_t>(dm & 0xffff));
        r.dmin = half_bits_to_float(static_cast<uint16_t>(dm >> 16));
        const uint32_t w0 = load_u32_a4(b + 4), w1 = load_u32_a4(b + 8), w2 = load_u32_a4(b + 12);
        scale_min_k4(2 * c, w0, w1, w2, r.sc[0], r.m[0]);
        scale_min_k4(2 * c + 1, w0, w1, w2, r.sc[1], r.m[1]);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint32_t q = load_u32_a4(b + 48 + 32 * c + 4 * k);
            const uint32_t qh = load_u32_a4(b + 16 + 4 * k);  // bit 2c: low-nibble element, 2c+1: high
            r.v[k] = static_cast<int>((q & kLow4) | (((qh >> (2 * c)) & kBit0) << 4));
            r.v[8 + k] = static_cast<int>(((q >> 4) & kLow4) | (((qh >> (2 * c + 1)) & kBit0) << 4));
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) { return Q4_K::dot(r, x); }
};

// Half h of a super-block: quarter s (32 elements, activation block s of the unit) is words 8s..8s+7 of
// v; each quarter has two 16-element sub-blocks (words 0-3 and 4-7).
struct Q2_K {
    static constexpr int kElems = 128, kBlockBytes = 84, kUnitsPerBlock = 2;
    struct Regs { int v[32]; uint32_t scales[2]; float d, dmin; };
    static __device__ __forceinline__ void load(const uint8_t* b, int h, Regs& r) {
        r.scales[0] = load_u32_a4(b + 8 * h);  // sub-blocks 8h .. 8h+7: scale low nibble, min high
        r.scales[1] = load_u32_a4(b + 8 * h + 4);
        const uint32_t dm = load_u32_a4(b + 80);
        r.d = half_bits_to_float(static_cast<uint16_t>(dm & 0xffff));
        r.dmin = half_bits_to_float(static_cast<uint16_t>(dm >> 16));
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint32_t q = load_u32_a4(b + 16 + 32 * h + 4 * k);
#pragma unroll
            for (int s = 0; s < 4; ++s) r.v[8 * s + k] = static_cast<int>((q >> (2 * s)) & kLow2);
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        float acc = 0.f;
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            int sumi = 0, summ = 0;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int j = 2 * s + half;
                const int sc = (r.scales[j / 4] >> (8 * (j % 4))) & 0xff;
                sumi += (sc & 0xf) * dot_words<4>(r.v + 8 * s + 4 * half, x, s, 4 * half);
                const int m_rep = static_cast<int>((sc >> 4) * kBit0);
#pragma unroll
                for (int w = 0; w < 4; ++w) summ = __dp4a(m_rep, x.word(s, 4 * half + w), summ);
            }
            acc += x.ds(s).x * (r.d * static_cast<float>(sumi) - r.dmin * static_cast<float>(summ));
        }
        return acc;
    }
};

struct Q3_K {
    static constexpr int kElems = 128, kBlockBytes = 110, kUnitsPerBlock = 2;
    struct Regs { int v[32]; int sc[8]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int h, Regs& r) {
        r.d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b + 108));
        const uint32_t p0 = load_u32_a2(b + 96), p1 = load_u32_a2(b + 100), p2 = load_u32_a2(b + 104);
#pragma unroll
        for (int t = 0; t < 8; ++t) {  // scale of sub-block j = 8h + t (unpack_q3_k_scales)
            const int j = 8 * h + t;
            const int sh = 8 * (j & 3);
            const uint32_t low_word = (j & 4) ? p1 : p0;  // packed byte j & 7
            const int low = j < 8 ? (low_word >> sh) & 0xf : (low_word >> (sh + 4)) & 0xf;
            const int high = (p2 >> (sh + 2 * (j / 4))) & 3;
            r.sc[t] = (low | (high << 4)) - 32;
        }
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint32_t q = load_u32_a2(b + 32 + 32 * h + 4 * k);
            const uint32_t hm = load_u32_a2(b + 4 * k);  // bit 4h+s of byte l: element 128h + 32s + l
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                const uint32_t level = ((q >> (2 * s)) & kLow2) | (((hm >> (4 * h + s)) & kBit0) << 2);
                r.v[8 * s + k] = static_cast<int>(__vsub4(level, 0x04040404u));
            }
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        float acc = 0.f;
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            const int sumi = r.sc[2 * s] * dot_words<4>(r.v + 8 * s, x, s, 0) +
                             r.sc[2 * s + 1] * dot_words<4>(r.v + 8 * s + 4, x, s, 4);
            acc += x.ds(s).x * static_cast<float>(sumi);
        }
        return r.d * acc;
    }
};

struct Q6_K {
    static constexpr int kElems = 128, kBlockBytes = 210, kUnitsPerBlock = 2;
    struct Regs { int v[32]; uint32_t scales[2]; float d; };
    static __device__ __forceinline__ void load(const uint8_t* b, int h, Regs& r) {
        r.d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b + 208));
        r.scales[0] = load_u32_a2(b + 192 + 8 * h);  // int8 scales of sub-blocks 8h .. 8h+7
        r.scales[1] = load_u32_a2(b + 192 + 8 * h + 4);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint32_t ql0 = load_u32_a2(b + 64 * h + 4 * k);       // ql[l], l = 4k..4k+3
            const uint32_t ql1 = load_u32_a2(b + 64 * h + 32 + 4 * k);  // ql[l + 32]
            const uint32_t qh = load_u32_a2(b + 128 + 32 * h + 4 * k);
            r.v[k] = static_cast<int>(__vsub4((ql0 & kLow4) | ((qh & kLow2) << 4), 0x20202020u));
            r.v[8 + k] = static_cast<int>(__vsub4((ql1 & kLow4) | (((qh >> 2) & kLow2) << 4), 0x20202020u));
            r.v[16 + k] = static_cast<int>(__vsub4(((ql0 >> 4) & kLow4) | (((qh >> 4) & kLow2) << 4), 0x20202020u));
            r.v[24 + k] = static_cast<int>(__vsub4(((ql1 >> 4) & kLow4) | (((qh >> 6) & kLow2) << 4), 0x20202020u));
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        float acc = 0.f;
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            const int sc0 = static_cast<int8_t>(r.scales[s / 2] >> (16 * (s % 2)));
            const int sc1 = static_cast<int8_t>(r.scales[s / 2] >> (16 * (s % 2) + 8));
            const int sumi = sc0 * dot_words<4>(r.v + 8 * s, x, s, 0) + sc1 * dot_words<4>(r.v + 8 * s + 4, x, s, 4);
            acc += x.ds(s).x * static_cast<float>(sumi);
        }
        return r.d * acc;
    }
};

struct IQ4_XS {
    static constexpr int kElems = 32, kBlockBytes = 136, kUnitsPerBlock = 8;
    struct Regs { int v[8]; float dl; };
    static __device__ __forceinline__ void load(const uint8_t* b, int ib, Regs& r) {
        const uint32_t head = load_u32_a4(b);  // d, scales_h
        const int lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0xf;
        const int hi = (head >> (16 + 2 * ib)) & 3;
        r.dl = half_bits_to_float(static_cast<uint16_t>(head & 0xffff)) * static_cast<float>((lo | (hi << 4)) - 32);
        const uint32_t table[4] = {c_iq4nl_words[0], c_iq4nl_words[1], c_iq4nl_words[2], c_iq4nl_words[3]};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint32_t q = load_u32_a4(b + 8 + 16 * ib + 4 * k);
            r.v[k] = lookup16(q & kLow4, table);
            r.v[k + 4] = lookup16((q >> 4) & kLow4, table);
        }
    }
    template <class X>
    static __device__ __forceinline__ float dot(const Regs& r, const X& x) {
        return static_cast<float>(dot_words<8>(r.v, x, 0)) * (r.dl * x.ds(0).x);
    }
};

// Calls f(Unit{}) for the unit type of `type`; returns false for types without one.
template <class F>
bool dispatch(GgmlType type, F&& f) {
    switch (type) {
        case GgmlType::Q4_0: f(Q4_0{}); return true;
        case GgmlType::Q4_1: f(Q4_1{}); return true;
        case GgmlType::Q5_0: f(Q5_0{}); return true;
        case GgmlType::Q5_1: f(Q5_1{}); return true;
        case GgmlType::Q8_0: f(Q8_0{}); return true;
        case GgmlType::Q2_K: f(Q2_K{}); return true;
        case GgmlType::Q3_K: f(Q3_K{}); return true;
        case GgmlType::Q4_K: f(Q4_K{}); return true;
        case GgmlType::Q5_K: f(Q5_K{}); return true;
        case GgmlType::Q6_K: f(Q6_K{}); return true;
        case GgmlType::IQ4_NL: f(IQ4_NL{}); return true;
        case GgmlType::IQ4_XS: f(IQ4_XS{}); return true;
        case GgmlType::MXFP4: f(MXFP4{}); return true;
        default: return false;
    }
}

// The dot of a weight row with up to kNT activation rows, spread over `lanes` threads (this thread is
// `lane`): each thread decodes its units once and dots them with every token. acc gets this thread's
// partial sums (reduce over the lanes afterwards). Tokens t >= n_valid are skipped.
template <class U, int kNT>
__device__ __forceinline__ void row_dot(const uint8_t* row, int n_units, int lane, int lanes,
                                        const BlockQ8_1* const (&x)[kNT], int n_valid, float (&acc)[kNT]) {
    for (int u = lane; u < n_units; u += lanes) {
        typename U::Regs r;
        U::load(row + static_cast<size_t>(u / U::kUnitsPerBlock) * U::kBlockBytes, u % U::kUnitsPerBlock, r);
        const int blk = u * (U::kElems / 32);
#pragma unroll
        for (int t = 0; t < kNT; ++t) {
            if (t < n_valid) acc[t] += U::dot(r, ActPtr{x[t] + blk});
        }
    }
}

// Sum over the `lanes` threads of a segment (lanes a power of two up to 32; all 32 threads of the warp
// must call it).
__device__ __forceinline__ float segment_sum(float v, int lanes) {
    for (int off = lanes / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// The smallest power of two >= n_units, at most 32: threads per weight row.
inline int lanes_for(int64_t n_units) {
    int lanes = 1;
    while (lanes < 32 && lanes < n_units) lanes *= 2;
    return lanes;
}

}  // namespace runtime::cuda::units
