// Choosing a type per tensor under a size budget: each tensor offers types with their bytes and a
// predicted cost (the KL divergence its quantization adds), and the choice minimises the summed cost
// within the budget. Costs are treated as additive over tensors, which holds for small, independent
// quantization errors; docs/quantize.md shows how well the prediction holds on the fixtures.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quant/quant.h"

namespace quant {

struct TypeOption {
    GgmlType type;
    uint64_t bytes = 0;
    double cost = 0;  // predicted added KL divergence
};

struct TensorOptions {
    std::string name;
    std::vector<TypeOption> options;  // at least one
};

struct Allocation {
    std::vector<size_t> choice;  // per tensor: the index of its chosen option
    uint64_t bytes = 0;
    double cost = 0;
};

// The least-cost choice with total bytes <= budget, found on the lower convex hull of each tensor's
// (bytes, cost) options: start from every tensor's smallest option, then take upgrades in order of
// cost saved per byte while they fit (a Lagrangian relaxation of the multiple-choice knapsack,
// optimal at the hull's vertices). Throws quant::Error when even the smallest options exceed it.
Allocation allocate_under_budget(std::span<const TensorOptions> tensors, uint64_t budget_bytes);

// The smallest choice whose total cost is at most max_cost (the same hull walk, stopped on the cost).
// Throws quant::Error when even the costliest options' best cannot reach it.
Allocation allocate_under_cost(std::span<const TensorOptions> tensors, double max_cost);

// Σ importance[c] (w - dequantize(quantize(w)))² over the rows of a tensor, importance per column
// (all 1 when null): the expected squared output error per token of the quantized matrix, given mean
// squared inputs. `importance` is also what the quantizer is given, as gguf-quantize does.
double weighted_quantization_error(GgmlType type, const float* rows, int64_t n_rows, int64_t n_per_row,
                                   const float* importance);

}  // namespace quant
