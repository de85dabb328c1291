// The lattice quantizer (see grid_quantizer.h). The search follows ggml's: per block, a scan of scales
// that put the largest magnitude near the top level, each rounding every group of magnitudes to the
// lattice and, when the rounded point is not on the grid, taking the best of its precomputed nearest
// grid points; the block scale is the weighted least-squares fit. Two things differ:
//  - fits and neighbour choices use the levels' true values (the IQ2 grid's coordinates are
//    8, 25 and 43, i.e. 1 : 3.125 : 5.375, not the 1 : 3 : 5 ggml's search assumes);
//  - the super-block scale, the 4-bit block scales and finally the grid points are chosen by the
//    error of the values as they will be dequantized, weighted by the importance alone (or not at
//    all), among candidates that include ggml's choice. So the error is never above ggml's.
#include "grid_quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "quant/float16.h"

namespace quant {
namespace {

struct Work {
    const GridFormat& f;
    const GridIndex& gi;
    float xval[kQKK];  // magnitudes, except one element per odd-signed 8 of an even_signs format
    float sw[kQKK];    // search weights
    float waux[kQKK];  // their square roots, for the neighbour choice (as ggml)
    float mw[kQKK];    // metric weights
};

uint32_t key_of(const Work& w, const int* L) {
    uint32_t key = 0;
    for (int j = 0; j < w.gi.dim(); ++j) key |= static_cast<uint32_t>(L[j]) << w.gi.bits() * j;
    return key;
}

// Grid point for the group at `first` with scale s: the rounded lattice point if it is on the grid,
// else the neighbour with the least error under `wt`.
int nearest_point(const Work& w, int first, float s, const float* wt) {
    const int dim = w.gi.dim();
    int L[8];
    const float id = 1 / s;
    for (int j = 0; j < dim; ++j) {
        L[j] = std::clamp(nearest_int(0.5f * (id * w.xval[first + j] - 1)), 0, w.f.levels - 1);
    }
    const uint32_t key = key_of(w, L);
    const int g = w.gi.find(key);
    if (g >= 0) return g;
    float best = std::numeric_limits<float>::max();
    int best_g = -1;
    for (const uint16_t n : w.gi.neighbours(key)) {
        const int8_t* lv = w.gi.levels(n);
        float d2 = 0;
        for (int j = 0; j < dim; ++j) {
            const float diff = s * w.f.value[lv[j]] - w.xval[first + j];
            d2 += wt[first + j] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            best_g = n;
        }
    }
    return best_g;
}

// Weighted squared error of a group at block scale s.
float group_error(const Work& w, int first, int g, float s) {
    const int8_t* lv = w.gi.levels(g);
    float err = 0;
    for (int j = 0; j < w.gi.dim(); ++j) {
        const float e = w.xval[first + j] - s * w.f.value[lv[j]];
        err += w.mw[first + j] * e * e;
    }
    return err;
}

// Scale search for one block; idx gets its groups' grid points. Returns the block scale (0: zeros).
float fit_block(const Work& w, int first, uint16_t* idx) {
    const int dim = w.gi.dim(), groups = w.f.block / dim;
    float max = 0;
    for (int i = 0; i < w.f.block; ++i) max = std::max(max, w.xval[first + i]);
    if (max < w.f.eps) {
        std::fill(idx, idx + groups, uint16_t{0});  // key 0 (all lowest levels) is point 0 of every grid
        return 0;
    }
    auto fit = [&](const uint16_t* pts, float& sqx, float& sq2) {
        sqx = sq2 = 0;
        for (int k = 0; k < groups; ++k) {
            const int8_t* lv = w.gi.levels(pts[k]);
            for (int j = 0; j < dim; ++j) {
                const int i = first + k * dim + j;
                const float q = w.f.value[lv[j]];
                sqx += w.sw[i] * w.xval[i] * q;
                sq2 += w.sw[i] * q * q;
            }
        }
    };
    uint16_t trial[8];
    float best = 0, scale = 0;
    const float top = 2.f * w.f.levels - 1;
    for (int is = -w.f.scan; is <= w.f.scan; ++is) {
        const float s = max / (top + is * w.f.scan_step);
        for (int k = 0; k < groups; ++k) trial[k] = static_cast<uint16_t>(nearest_point(w, first + k * dim, s, w.waux));
        float sqx, sq2;
        fit(trial, sqx, sq2);
        if (sq2 > 0 && sqx > 0 && sqx * sqx > best * sq2) {
            scale = sqx / sq2;
            best = scale * sqx;
            std::copy(trial, trial + groups, idx);
        }
    }
    if (scale <= 0) {
        std::fill(idx, idx + groups, uint16_t{0});
        return 0;
    }
    // Re-round every group at the fitted scale; keep it if the fit improves.
    for (int k = 0; k < groups; ++k) trial[k] = static_cast<uint16_t>(nearest_point(w, first + k * dim, scale, w.waux));
    float sqx, sq2;
    fit(trial, sqx, sq2);
    if (sq2 > 0 && sqx > 0 && sqx * sqx > best * sq2) {
        scale = sqx / sq2;
        std::copy(trial, trial + groups, idx);
    }
    return scale;
}

// Best 4-bit block scale near ls0 for fixed points; returns its error.
float best_block_scale(const Work& w, int first, const uint16_t* idx, float d, int ls0, uint8_t& ls_out) {
    const int dim = w.gi.dim(), groups = w.f.block / dim;
    float best = std::numeric_limits<float>::max();
    for (int ls = std::max(0, ls0 - 1); ls <= std::min(15, ls0 + 1); ++ls) {
        const float s = d * (2 * ls + 1);
        float err = 0;
        for (int k = 0; k < groups; ++k) err += group_error(w, first + k * dim, idx[k], s);
        if (err < best) {
            best = err;
            ls_out = static_cast<uint8_t>(ls);
        }
    }
    return best;
}

int initial_ls(float scale, float d) { return nearest_int(std::clamp(0.5f * (scale / d - 1), 0.f, 15.f)); }

}  // namespace

void quantize_grid_superblock(const GridFormat& f, const float* x, const float* imatrix, GridSuperBlock& out) {
    Work w{f, grid_index(f.kind), {}, {}, {}, {}};
    const int dim = w.gi.dim(), groups = f.block / dim, nb = kQKK / f.block;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += x[i] * x[i];
    const float sigma2 = f.sigma_factor * sumx2 / kQKK;
    for (int i = 0; i < kQKK; ++i) {
        w.sw[i] = imatrix ? imatrix[i] * std::sqrt(sigma2 + x[i] * x[i]) : f.plain_sigma * sigma2 + x[i] * x[i];
        w.waux[i] = std::sqrt(w.sw[i]);
        w.mw[i] = imatrix ? imatrix[i] : 1.0f;
    }
    for (int g8 = 0; g8 < kQKK / 8; ++g8) {
        const float* xb = x + 8 * g8;
        float* xv = w.xval + 8 * g8;
        int s = 0, negatives = 0;
        for (int i = 0; i < 8; ++i) {
            xv[i] = std::fabs(xb[i]);
            if (xb[i] < 0) {
                s |= 1 << i;
                ++negatives;
            }
        }
        if (f.even_signs && negatives % 2) {
            // Give the wrong sign to the element where it costs least.
            int imin = 0;
            for (int i = 1; i < 8; ++i) {
                if (w.sw[8 * g8 + i] * xb[i] * xb[i] < w.sw[8 * g8 + imin] * xb[imin] * xb[imin]) imin = i;
            }
            xv[imin] = -xv[imin];
            s ^= 1 << imin;
        }
        out.signs[g8] = static_cast<uint8_t>(s);
    }

    float scales[kQKK / 16];
    float max_scale = 0;
    for (int b = 0; b < nb; ++b) {
        scales[b] = fit_block(w, f.block * b, out.grid + groups * b);
        max_scale = std::max(max_scale, scales[b]);
    }
    std::fill(out.ls, out.ls + kQKK / 16, uint8_t{0});
    if (max_scale == 0) {
        out.d = 0;
        return;
    }

    // Super-block scale: ggml's (largest block scale / 31, times its fudge factor) and neighbours.
    float best_total = std::numeric_limits<float>::max();
    uint16_t best_h = 0;
    for (const float c : {1.0f, 0.97f, 0.985f, 1.015f, 1.03f}) {
        const uint16_t h = f32_to_f16(max_scale / 31 * f.d_fudge * c);
        const float d = f16_to_f32(h);
        if (!(d > 0)) continue;
        float total = 0;
        uint8_t ls;
        for (int b = 0; b < nb; ++b) {
            total += best_block_scale(w, f.block * b, out.grid + groups * b, d, initial_ls(scales[b], d), ls);
        }
        if (total < best_total) {
            best_total = total;
            best_h = h;
        }
    }
    out.d = best_h;
    const float d = f16_to_f32(best_h);
    if (!(d > 0)) return;  // scales too small for fp16: the block dequantizes to zeros
    for (int b = 0; b < nb; ++b) {
        const int first = f.block * b;
        uint16_t* idx = out.grid + groups * b;
        best_block_scale(w, first, idx, d, initial_ls(scales[b], d), out.ls[b]);
        // With the block scale final, re-pick each group's point among the rounded one and its
        // neighbours, by the metric, then let the block scale follow.
        const float s = d * (2 * out.ls[b] + 1);
        for (int k = 0; k < groups; ++k) {
            const int g = nearest_point(w, first + k * dim, s, w.mw);
            if (group_error(w, first + k * dim, g, s) < group_error(w, first + k * dim, idx[k], s)) {
                idx[k] = static_cast<uint16_t>(g);
            }
        }
        best_block_scale(w, first, idx, d, out.ls[b], out.ls[b]);
    }
}

}  // namespace quant
