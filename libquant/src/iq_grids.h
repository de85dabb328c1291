// The lattice grids of the IQ1/IQ2/IQ3 formats: ggml's dequantization tables (a grid point is 8 or 4
// byte-sized coordinates) and, for quantization, an index from every reachable point of the coarse
// integer lattice to its grid point or, when it is off the grid, its nearest grid points.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace quant {

// Dequantization grids, identical to ggml's iq2xxs_grid ... iq3s_grid: coordinates 0x08/0x19/0x2b for
// the IQ2 grids, int8 -1/0/+1 for IQ1, 4..62 for IQ3_XXS and the odd numbers 1..15 for IQ3_S.
extern const std::array<uint64_t, 256> kGridIQ2XXS;
extern const std::array<uint64_t, 512> kGridIQ2XS;
extern const std::array<uint64_t, 1024> kGridIQ2S;
extern const std::array<uint64_t, 2048> kGridIQ1S;
extern const std::array<uint32_t, 256> kGridIQ3XXS;
extern const std::array<uint32_t, 512> kGridIQ3S;

// Seven sign bits to eight: bit 7 makes the number of minus signs even (ggml's ksigns_iq2xs).
extern const std::array<uint8_t, 128> kSignsEvenParity;

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
