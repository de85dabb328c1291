// The lattice grids of the IQ1/IQ2/IQ3 formats: ggml's dequantization tables (a grid point is 8 or 4
// byte-sized coordinates) and, for quantization, an index from every reachable point of the coarse
// integer lattice to its grid point or, when it is off the grid, its nearest grid points.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "quant/tables.h"

namespace quant {

// Coordinate j of a grid point.
inline uint8_t grid_coord(uint64_t point, int j) { return static_cast<uint8_t>(point >> 8 * j); }

enum class GridKind { IQ2XXS, IQ2XS, IQ2S, IQ1S, IQ3XXS, IQ3S };

// A grid in level space: coordinate j of point g is a level 0..2 (IQ1, IQ2; 2 bits in a key) or 0..7
// (IQ3; 3 bits), the key of a lattice point packs its levels, coordinate 0 lowest.
class GridIndex {
public:
    GridIndex(GridKind kind);
    int dim() const { return dim_; }
    int bits() const { return bits_; }
    const int8_t* levels(int g) const { return &levels_[static_cast<size_t>(g) * dim_]; }
    // The grid point with this key, or -1.
    int find(uint32_t key) const { return map_[key] >= 0 ? map_[key] : -1; }
    // For a key off the grid: the grid points at the smallest few distances (never empty), nearest
    // first, ties in grid order.
    std::span<const uint16_t> neighbours(uint32_t key) const {
        const size_t at = static_cast<size_t>(-map_[key] - 1);
        return {&neighbours_[at + 1], neighbours_[at]};
    }

private:
    int dim_, bits_;
    std::vector<int8_t> levels_;
    std::vector<int32_t> map_;          // grid index, or -(offset of the neighbour list + 1)
    std::vector<uint16_t> neighbours_;  // per off-grid key: count, then grid indices
};

// Built on first use (thread-safe), then shared.
const GridIndex& grid_index(GridKind kind);

}  // namespace quant
