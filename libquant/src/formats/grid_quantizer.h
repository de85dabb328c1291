// The quantizer shared by the lattice formats IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S: each block
// of 32 (or 16) gets a scale and, per group of 8 (or 4) magnitudes, a grid point; signs are kept per 8.
// The format files pack the result into their own bit layouts.
#pragma once

#include <cstdint>

#include "block_common.h"
#include "iq_grids.h"

namespace quant {

struct GridFormat {
    GridKind kind;
    int block;             // elements under one 4-bit block scale: 32 or 16
    const float* value;    // value of each coordinate level, in units of the block scale
    int levels;            // levels per coordinate: 3 (IQ2) or 8 (IQ3)
    bool even_signs;       // only 7 sign bits per 8 are stored: the number of minus signs must be even
    int scan;              // block-scale scan: steps -scan..scan ...
    float scan_step;       // ... of this size around the largest level
    float sigma_factor;    // sigma^2 = factor * mean(x^2) in the search weights
    float plain_sigma;     // without an imatrix the search weights are plain_sigma * sigma^2 + x^2
    float eps;             // a block whose largest magnitude is below this is all zeros
    float d_fudge;         // ggml's factor on the super-block scale (largest block scale / 31)
};

// One 256-element super-block, unpacked: the fp16 scale, 4-bit block scales (block scale
// d * (2 ls + 1)), one grid index per group and the sign mask of each 8 elements (bit i set: element i
// negative; for even_signs formats bit 7 is implied by the others).
struct GridSuperBlock {
    uint16_t d;
    uint8_t ls[kQKK / 16];
    uint16_t grid[kQKK / 4];
    uint8_t signs[kQKK / 8];
};

// imatrix (256 weights for this super-block) may be null.
void quantize_grid_superblock(const GridFormat& f, const float* x, const float* imatrix, GridSuperBlock& out);

}  // namespace quant
