// IQ1_S and IQ1_M: groups of 8 weights on a 2048-point grid with coordinates -1, 0, +1, every coordinate
// shifted by a "delta" of +-1/8, under 3-bit block scales d * (2l + 1). IQ1_S has a scale and a delta
// sign per 32 and an fp16 super-scale; IQ1_M a scale per 16, a delta sign per 8, and its fp16 super-scale
// spread over the top nibbles of its four 16-bit scale words. ggml quantizes IQ1_S only with an
// importance matrix.
//
// Quantization: per block, the weighted least-squares split of the sorted weights into the levels
// -1 / 0 / +1 for every choice of delta signs (exhaustive), projected onto the grid; then the
// super-scale from a scan around ggml's choice; then per block the scale, delta signs and grid points
// that minimize the (importance-weighted) error of the values as they will be dequantized.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "format_ops.h"
#include "iq_dot.h"
#include "grid_runs.h"
#include "iq_blocks.h"
#include "iq_grids.h"
#include "quant/float16.h"

namespace quant {
namespace {

constexpr float kDelta = kDeltaIQ1;  // ggml's IQ1S_DELTA (quant/tables.h), used by both formats

struct Layout {
    int block;  // elements under one 3-bit scale: 32 (IQ1_S) or 16 (IQ1_M)
    int shift;  // elements under one delta sign: 32 or 8
};
constexpr Layout kLayoutS{32, 32};
constexpr Layout kLayoutM{16, 8};

// One super-block, unpacked: fp16 scale, 3-bit block scales, a grid index and delta sign per 8.
struct SuperBlock {
    uint16_t d;
    uint8_t ls[kQKK / 16];
    uint16_t grid[kQKK / 8];
    bool minus[kQKK / 8];
};

struct Work {
    const Layout& f;
    const GridIndex& gi;
    const float* x;
    float sw[kQKK];  // search weights
    float mw[kQKK];  // metric weights: the importance, or 1
};

float coord(int level, bool minus) { return static_cast<float>(level - 1) + (minus ? -kDelta : kDelta); }

// Weighted squared error of group k as grid point g with the given delta sign at scale s.
float group_error(const Work& w, const float* wt, int k, int g, bool minus, float s) {
    const int8_t* lv = w.gi.levels(g);
    float err = 0;
    for (int j = 0; j < 8; ++j) {
        const float e = w.x[8 * k + j] - s * coord(lv[j], minus);
        err += wt[8 * k + j] * e * e;
    }
    return err;
}

// The grid point for group k at scale s: the rounded one when it is on the grid (then it is the best),
// else the neighbour with the least error under wt.
int nearest_point(const Work& w, const float* wt, int k, float s, bool minus) {
    const float offset = minus ? -kDelta : kDelta;
    uint32_t key = 0;
    for (int j = 0; j < 8; ++j) {
        const float t = std::clamp(w.x[8 * k + j] / s - offset, -2.f, 2.f);
        key |= static_cast<uint32_t>(std::clamp(nearest_int(t) + 1, 0, 2)) << 2 * j;
    }
    const int g = w.gi.find(key);
    if (g >= 0) return g;
    float best = std::numeric_limits<float>::max();
    int best_g = 0;
    for (const uint16_t n : w.gi.neighbours(key)) {
        const float e = group_error(w, wt, k, n, minus, s);
        if (e < best) {
            best = e;
            best_g = n;
        }
    }
    return best_g;
}

// Least-squares scale of a block for fixed points and delta signs under the search weights.
float fit_scale(const Work& w, int first, const SuperBlock& out) {
    double sqx = 0, sq2 = 0;
    for (int k = first / 8; k < (first + w.f.block) / 8; ++k) {
        const int8_t* lv = w.gi.levels(out.grid[k]);
        for (int j = 0; j < 8; ++j) {
            const int i = 8 * k + j;
            const double q = coord(lv[j], out.minus[k]);
            sqx += w.sw[i] * q * w.x[i];
            sq2 += w.sw[i] * q * q;
        }
    }
    return sq2 > 0 && sqx > 0 ? static_cast<float>(sqx / sq2) : 0.f;
}

// First pass over one block: levels, delta signs and grid points; returns its scale (0: all zeros).
float fit_block(const Work& w, int first, SuperBlock& out) {
    const int n = w.f.block, k0 = first / 8, groups = n / 8;
    float max = 0;
    for (int i = 0; i < n; ++i) max = std::max(max, std::fabs(w.x[first + i]));
    std::fill(out.grid + k0, out.grid + k0 + groups, uint16_t{0});
    std::fill(out.minus + k0, out.minus + k0 + groups, false);
    if (max < kGroupMaxEps) return 0;

    int order[32];
    std::iota(order, order + n, 0);
    std::sort(order, order + n, [&](int a, int b) { return w.x[first + a] < w.x[first + b]; });
    // The best split of the sorted elements into -1 | 0 | +1 for each delta-sign choice, from prefix
    // sums of w x, w x delta, w and w delta: sum q x and sum q^2 of a split are linear in them.
    double best = 0, split_scale = 0;
    int best_i1 = -1, best_i2 = -1, best_signs = 0;
    for (int signs = 0; signs < 1 << (n / w.f.shift); ++signs) {
        double wx[33] = {}, wxd[33] = {}, ws[33] = {}, wd[33] = {};
        for (int p = 0; p < n; ++p) {
            const int i = order[p];
            const double delta = (signs >> (i / w.f.shift) & 1) ? -kDelta : kDelta;
            const double wi = w.sw[first + i], xi = w.x[first + i];
            wx[p + 1] = wx[p] + wi * xi;
            wxd[p + 1] = wxd[p] + wi * xi * delta;
            ws[p + 1] = ws[p] + wi;
            wd[p + 1] = wd[p] + wi * delta;
        }
        for (int i1 = 0; i1 <= n; ++i1) {
            for (int i2 = i1; i2 <= n; ++i2) {
                const double sqx = -wx[i1] + (wx[n] - wx[i2]) + wxd[n];
                const double sq2 = ws[i1] + (ws[n] - ws[i2]) + 2 * (-wd[i1] + (wd[n] - wd[i2])) + kDelta * kDelta * ws[n];
                if (sq2 > 0 && sqx > 0 && sqx * sqx > best * sq2) {
                    best = sqx * sqx / sq2;
                    split_scale = sqx / sq2;
                    best_i1 = i1;
                    best_i2 = i2;
                    best_signs = signs;
                }
            }
        }
    }
    if (best_i1 < 0) return 0;
    int level[32];
    for (int p = 0; p < n; ++p) level[order[p]] = p < best_i1 ? 0 : p < best_i2 ? 1 : 2;
    for (int g = 0; g < groups; ++g) {
        const int k = k0 + g;
        out.minus[k] = (best_signs >> (8 * g / w.f.shift)) & 1;
        uint32_t key = 0;
        for (int j = 0; j < 8; ++j) key |= static_cast<uint32_t>(level[8 * g + j]) << 2 * j;
        const int p = w.gi.find(key);
        out.grid[k] = static_cast<uint16_t>(p >= 0 ? p : nearest_point(w, w.sw, k, static_cast<float>(split_scale), out.minus[k]));
    }
    return fit_scale(w, first, out);
}

// Error of a block at scale s with its current points and signs.
float block_error(const Work& w, int first, const SuperBlock& out, float s) {
    float err = 0;
    for (int k = first / 8; k < (first + w.f.block) / 8; ++k) err += group_error(w, w.mw, k, out.grid[k], out.minus[k], s);
    return err;
}

// Final pass over block b at super-scale d: for each 3-bit scale, the best delta signs and points
// (the current ones are candidates); keeps the scale with the least error.
void refine_block(const Work& w, int b, float d, SuperBlock& out) {
    const int first = b * w.f.block, k0 = first / 8, groups = w.f.block / 8, per_sign = w.f.shift / 8;
    float best_total = std::numeric_limits<float>::max();
    uint16_t best_grid[4], trial_grid[4];
    bool best_minus[4], trial_minus[4];
    for (int l = 0; l < 8; ++l) {
        const float s = d * static_cast<float>(2 * l + 1);
        float total = 0;
        for (int g0 = 0; g0 < groups; g0 += per_sign) {
            float best_err = std::numeric_limits<float>::max();
            for (const bool minus : {false, true}) {
                float err = 0;
                uint16_t pts[4];
                for (int g = g0; g < g0 + per_sign; ++g) {
                    const int k = k0 + g;
                    int p = nearest_point(w, w.mw, k, s, minus);
                    float e = group_error(w, w.mw, k, p, minus, s);
                    if (minus == out.minus[k]) {
                        const float e_cur = group_error(w, w.mw, k, out.grid[k], minus, s);
                        if (e_cur < e) {
                            e = e_cur;
                            p = out.grid[k];
                        }
                    }
                    err += e;
                    pts[g - g0] = static_cast<uint16_t>(p);
                }
                if (err < best_err) {
                    best_err = err;
                    for (int g = g0; g < g0 + per_sign; ++g) {
                        trial_grid[g] = pts[g - g0];
                        trial_minus[g] = minus;
                    }
                }
            }
            total += best_err;
        }
        if (total < best_total) {
            best_total = total;
            out.ls[b] = static_cast<uint8_t>(l);
            std::copy(trial_grid, trial_grid + groups, best_grid);
            std::copy(trial_minus, trial_minus + groups, best_minus);
        }
    }
    std::copy(best_grid, best_grid + groups, out.grid + k0);
    std::copy(best_minus, best_minus + groups, out.minus + k0);
}

void quantize_superblock(const Layout& f, const float* x, const float* imatrix, SuperBlock& out) {
    Work w{f, grid_index(GridKind::IQ1S), x, {}, {}};
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += x[i] * x[i];
    const float sigma2 = 2 * sumx2 / kQKK;
    for (int i = 0; i < kQKK; ++i) {
        w.sw[i] = imatrix ? imatrix[i] * std::sqrt(sigma2 + x[i] * x[i]) : 1.f;
        w.mw[i] = imatrix ? imatrix[i] : 1.f;
    }
    const int nb = kQKK / f.block;
    float scales[kQKK / 16];
    float max_scale = 0;
    for (int b = 0; b < nb; ++b) {
        scales[b] = fit_block(w, f.block * b, out);
        max_scale = std::max(max_scale, scales[b]);
    }
    std::fill(out.ls, out.ls + kQKK / 16, uint8_t{0});
    out.d = 0;
    if (max_scale == 0) return;

    // Super-scale: the largest block scale over the top scale 15, times factors around ggml's 1.1-1.125;
    // each block takes its best 3-bit scale for the points it has.
    float best_total = std::numeric_limits<float>::max();
    for (int c = 0; c <= 16; ++c) {
        const uint16_t h = f32_to_f16(max_scale / 15 * (0.85f + 0.025f * static_cast<float>(c)));
        const float d = f16_to_f32(h);
        if (!(d > 0) || !std::isfinite(d)) continue;
        float total = 0;
        for (int b = 0; b < nb; ++b) {
            float best = std::numeric_limits<float>::max();
            for (int l = 0; l < 8; ++l) best = std::min(best, block_error(w, f.block * b, out, d * static_cast<float>(2 * l + 1)));
            total += best;
        }
        if (total < best_total) {
            best_total = total;
            out.d = h;
        }
    }
    const float d = f16_to_f32(out.d);
    if (!(d > 0)) return;  // scales out of fp16 range: the block dequantizes to zeros
    for (int b = 0; b < nb; ++b) refine_block(w, b, d, out);
}

void iq1_s_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ1S*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float d = f16_to_f32(x[b].d);
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            const int qh = x[b].qh[ib];
            const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
            const float delta = qh & 0x8000 ? -kDelta : kDelta;
            for (int l = 0; l < 4; ++l, y += 8) {
                const uint64_t point = kGridIQ1S[x[b].qs[4 * ib + l] | ((qh >> 3 * l) & 7) << 8];
                for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(static_cast<int8_t>(grid_coord(point, j))) + delta);
            }
        }
    }
}

void iq1_s_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ1S*>(dst);
    SuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_superblock(kLayoutS, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        y[b].d = s.d;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            int qh = s.ls[ib] << 12 | (s.minus[4 * ib] ? 0x8000 : 0);
            for (int l = 0; l < 4; ++l) {
                y[b].qs[4 * ib + l] = static_cast<uint8_t>(s.grid[4 * ib + l] & 255);
                qh |= (s.grid[4 * ib + l] >> 8) << 3 * l;
            }
            y[b].qh[ib] = static_cast<uint16_t>(qh);
        }
    }
}

void iq1_m_dequantize(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ1M*>(src);
    for (int64_t b = 0; b < n / kQKK; ++b) {
        uint16_t sc[4];
        const float d = f16_to_f32(iq1_m_scale(x[b], sc));
        for (int g = 0; g < kQKK / 8; ++g, y += 8) {
            const int h = x[b].qh[g / 2] >> 4 * (g % 2);  // 3 high index bits, then the delta sign
            const float dl = d * static_cast<float>(2 * ((sc[g / 8] >> 3 * (g / 2 % 4)) & 7) + 1);
            const float delta = h & 8 ? -kDelta : kDelta;
            const uint64_t point = kGridIQ1S[x[b].qs[g] | (h & 7) << 8];
            for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(static_cast<int8_t>(grid_coord(point, j))) + delta);
        }
    }
}

void iq1_m_quantize(const float* src, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ1M*>(dst);
    SuperBlock s;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_superblock(kLayoutM, src + b * kQKK, imatrix ? imatrix + b * kQKK : nullptr, s);
        std::fill(y[b].qh, y[b].qh + kQKK / 16, uint8_t{0});
        for (int g = 0; g < kQKK / 8; ++g) {
            y[b].qs[g] = static_cast<uint8_t>(s.grid[g] & 255);
            y[b].qh[g / 2] |= static_cast<uint8_t>(((s.grid[g] >> 8) | (s.minus[g] ? 8 : 0)) << 4 * (g % 2));
        }
        uint16_t sc[4] = {};
        for (int k = 0; k < kQKK / 16; ++k) sc[k / 4] |= static_cast<uint16_t>(s.ls[k] << 3 * (k % 4));
        for (int i = 0; i < 4; ++i) sc[i] |= static_cast<uint16_t>(((s.d >> 4 * i) & 0xf) << 12);
        std::memcpy(y[b].scales, sc, sizeof sc);
    }
}

// IQ1_M's four 16-bit scale words hold the 3-bit scales of 16-element blocks 4i..4i+3 in bits 0-11 of
// word i and nibble i of the fp16 super-scale in bits 12-15 (iq1_m_scale in grid_runs.h reads them).

// Dot products against Q8_K in integers: a weight is dl / 8 * (8 g +- 1) with g the grid coordinate.
int dot8(uint64_t point, int delta_sign, const int8_t* a) {
    int s = 0;
    for (int j = 0; j < 8; ++j) s += (8 * static_cast<int8_t>(grid_coord(point, j)) + delta_sign) * a[j];
    return s;
}

}  // namespace

float dot_iq1_s_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ1S*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        int sumi = 0;
        for (int ib = 0; ib < kQKK / 32; ++ib) {
            const int qh = x[b].qh[ib];
            const int sign = qh & 0x8000 ? -1 : 1;
            int s = 0;
            for (int l = 0; l < 4; ++l) {
                s += dot8(kGridIQ1S[x[b].qs[4 * ib + l] | ((qh >> 3 * l) & 7) << 8], sign, y[b].qs + 32 * ib + 8 * l);
            }
            sumi += (2 * ((qh >> 12) & 7) + 1) * s;
        }
        sum += f16_to_f32(x[b].d) * y[b].d * 0.125f * static_cast<float>(sumi);
    }
    return sum;
}

float dot_iq1_m_q8_k_scalar(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ1M*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        uint16_t sc[4];
        const float d = f16_to_f32(iq1_m_scale(x[b], sc));
        int sumi = 0;
        for (int g = 0; g < kQKK / 8; ++g) {
            const int h = x[b].qh[g / 2] >> 4 * (g % 2);
            const int ls = 2 * ((sc[g / 8] >> 3 * (g / 2 % 4)) & 7) + 1;
            sumi += ls * dot8(kGridIQ1S[x[b].qs[g] | (h & 7) << 8], h & 8 ? -1 : 1, y[b].qs + 8 * g);
        }
        sum += d * y[b].d * 0.125f * static_cast<float>(sumi);
    }
    return sum;
}

const FormatOps kIQ1_SOps{GgmlType::IQ1_S, iq1_s_dequantize, iq1_s_quantize, true, GgmlType::Q8_K,
                          dot_iq1_s_q8_k_scalar, dot_iq1_s_q8_k_avx2, dot_iq1_s_q8_k_avx512};
const FormatOps kIQ1_MOps{GgmlType::IQ1_M, iq1_m_dequantize, iq1_m_quantize, false, GgmlType::Q8_K,
                          dot_iq1_m_q8_k_scalar, dot_iq1_m_q8_k_avx2, dot_iq1_m_q8_k_avx512};

}  // namespace quant
