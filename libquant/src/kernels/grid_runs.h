// What the SIMD dot kernels of the grid formats (IQ1_S ... IQ3_S) read from one 32-element run of a
// super-block, decoded in plain integer code: four 8-byte grid points (element 8l + j is byte j of
// point l), how each is signed or shifted, and the integer scales of elements 0-15 and 16-31.
// Included by files compiled for different instruction sets, so everything here lives in an unnamed
// namespace (a private copy per file; see dot_x86.h).
#pragma once

#include <cstdint>
#include <cstring>

#include "iq_blocks.h"
#include "iq_grids.h"

namespace quant {
namespace {

// IQ2 / IQ3: unsigned coordinates, element i negated where bit i of neg is set.
struct SignedRun {
    uint64_t grid[4];
    uint32_t neg;
    int scale[2];
};

// IQ1: int8 coordinates -1, 0, +1; the weight is 8 (g + 1) + offset times the scale, where every byte
// of offset[l] is -7 or -9 (-8 and the delta of +-1/8 of the coordinate unit, times 8).
struct ShiftedRun {
    uint64_t grid[4];
    uint64_t offset[4];
    int scale[2];
};

inline uint64_t iq1_offset(bool minus) { return minus ? 0xf7f7f7f7f7f7f7f7ull : 0xf9f9f9f9f9f9f9f9ull; }

inline SignedRun run_iq2_xxs(const BlockIQ2XXS& x, int ib) {
    uint32_t grid, aux;
    std::memcpy(&grid, x.qs + 4 * ib, 4);
    std::memcpy(&aux, x.qs + 4 * ib + 2, 4);
    SignedRun r{};
    for (int l = 0; l < 4; ++l) {
        r.grid[l] = kGridIQ2XXS[(grid >> 8 * l) & 0xff];
        r.neg |= static_cast<uint32_t>(kSignsEvenParity[(aux >> 7 * l) & 127]) << 8 * l;
    }
    r.scale[0] = r.scale[1] = static_cast<int>(2 * (aux >> 28) + 1);
    return r;
}

inline SignedRun run_iq2_xs(const BlockIQ2XS& x, int ib) {
    uint64_t q4;  // the run's four 16-bit words at once: 16-bit loads cost the compiler spills
    std::memcpy(&q4, x.qs + 4 * ib, 8);
    SignedRun r{};
    for (int l = 0; l < 4; ++l) {
        const auto q = static_cast<uint32_t>(q4 >> 16 * l) & 0xffff;
        r.grid[l] = kGridIQ2XS[q & 511];
        r.neg |= static_cast<uint32_t>(kSignsEvenParity[q >> 9]) << 8 * l;
    }
    r.scale[0] = 2 * (x.scales[ib] & 0xf) + 1;
    r.scale[1] = 2 * (x.scales[ib] >> 4) + 1;
    return r;
}

inline SignedRun run_iq2_s(const BlockIQ2S& x, int ib) {
    SignedRun r{};
    for (int l = 0; l < 4; ++l) {
        r.grid[l] = kGridIQ2S[x.qs[4 * ib + l] | ((x.qh[ib] << (8 - 2 * l)) & 0x300)];
        r.neg |= static_cast<uint32_t>(x.qs[kQKK / 8 + 4 * ib + l]) << 8 * l;
    }
    r.scale[0] = 2 * (x.scales[ib] & 0xf) + 1;
    r.scale[1] = 2 * (x.scales[ib] >> 4) + 1;
    return r;
}

inline SignedRun run_iq3_xxs(const BlockIQ3XXS& x, int ib) {
    uint32_t aux;
    std::memcpy(&aux, x.qs + kQKK / 4 + 4 * ib, 4);
    const uint8_t* qs = x.qs + 8 * ib;
    SignedRun r{};
    for (int l = 0; l < 4; ++l) {
        r.grid[l] = kGridIQ3XXS[qs[2 * l]] | uint64_t{kGridIQ3XXS[qs[2 * l + 1]]} << 32;
        r.neg |= static_cast<uint32_t>(kSignsEvenParity[(aux >> 7 * l) & 127]) << 8 * l;
    }
    r.scale[0] = r.scale[1] = static_cast<int>(2 * (aux >> 28) + 1);
    return r;
}

inline SignedRun run_iq3_s(const BlockIQ3S& x, int ib) {
    const uint8_t* qs = x.qs + 8 * ib;
    const int qh = x.qh[ib];
    SignedRun r{};
    for (int l = 0; l < 4; ++l) {
        const int i0 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
        const int i1 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        r.grid[l] = kGridIQ3S[i0] | uint64_t{kGridIQ3S[i1]} << 32;
    }
    std::memcpy(&r.neg, x.signs + 4 * ib, 4);
    r.scale[0] = r.scale[1] = 2 * ((x.scales[ib / 2] >> 4 * (ib % 2)) & 0xf) + 1;
    return r;
}

inline ShiftedRun run_iq1_s(const BlockIQ1S& x, int ib) {
    const int qh = x.qh[ib];
    ShiftedRun r{};
    for (int l = 0; l < 4; ++l) {
        r.grid[l] = kGridIQ1S[x.qs[4 * ib + l] | ((qh >> 3 * l) & 7) << 8];
        r.offset[l] = iq1_offset(qh & 0x8000);
    }
    r.scale[0] = r.scale[1] = 2 * ((qh >> 12) & 7) + 1;
    return r;
}

// sc: the block's four scale words (see iq1.cpp).
inline ShiftedRun run_iq1_m(const BlockIQ1M& x, const uint16_t* sc, int ib) {
    uint16_t qh;  // 3 high index bits and the delta sign of each group, a nibble each
    std::memcpy(&qh, x.qh + 2 * ib, 2);
    ShiftedRun r{};
    for (int l = 0; l < 4; ++l) {
        const int h = qh >> 4 * l;
        r.grid[l] = kGridIQ1S[x.qs[4 * ib + l] | (h & 7) << 8];
        r.offset[l] = iq1_offset(h & 8);
    }
    r.scale[0] = 2 * ((sc[ib / 2] >> 6 * (ib % 2)) & 7) + 1;
    r.scale[1] = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
    return r;
}

// The fp16 bits of IQ1_M's super-scale; sc gets the four scale words. (Each caller converts with its
// own instruction set: an inline conversion shared with the SIMD files could be linked into scalar code.)
inline uint16_t iq1_m_scale(const BlockIQ1M& x, uint16_t* sc) {
    std::memcpy(sc, x.scales, 8);
    return static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

}  // namespace
}  // namespace quant
