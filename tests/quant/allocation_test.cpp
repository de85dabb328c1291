// Choosing types under a budget: the hull walk finds the least predicted cost within the bytes, skips
// dominated options, and refuses budgets nothing fits; the weighted error it is fed ranks types.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/allocation.h"

namespace {

using gguf::GgmlType;

std::vector<quant::TensorOptions> two_tensors() {
    return {
        {"a", {{GgmlType::Q2_K, 10, 5.0}, {GgmlType::Q4_K, 20, 1.0}, {GgmlType::Q8_0, 30, 0.9}}},
        // q4_K here lies above the line from q2_K to q8_0: never worth taking
        {"b", {{GgmlType::Q2_K, 10, 3.0}, {GgmlType::Q4_K, 20, 2.5}, {GgmlType::Q8_0, 30, 0.0}}},
    };
}

TEST(Allocation, LeastCostWithinTheBudget) {
    const auto t = two_tensors();
    const quant::Allocation a = quant::allocate_under_budget(t, 50);
    EXPECT_EQ(a.choice, (std::vector<size_t>{1, 2}));  // a at 20 bytes, b at 30
    EXPECT_EQ(a.bytes, 50u);
    EXPECT_DOUBLE_EQ(a.cost, 1.0);
    // at budgets on the hull walk's steps no pair of options within them costs less (between steps
    // an off-hull option can: 45 bytes would fit b's q4_K beside a's, the walk stops at 40 and 3.9)
    for (uint64_t budget : {20u, 30u, 50u, 60u}) {
        const quant::Allocation b = quant::allocate_under_budget(t, budget);
        EXPECT_LE(b.bytes, budget);
        for (const auto& x : t[0].options) {
            for (const auto& y : t[1].options) {
                if (x.bytes + y.bytes <= budget) {
                    EXPECT_LE(b.cost, x.cost + y.cost + 1e-12) << budget;
                }
            }
        }
    }
    EXPECT_THROW(quant::allocate_under_budget(t, 19), quant::Error);
}

TEST(Allocation, SmallestWithinACostBound) {
    const auto t = two_tensors();
    const quant::Allocation a = quant::allocate_under_cost(t, 4.0);
    EXPECT_EQ(a.choice, (std::vector<size_t>{1, 0}));  // the best saving per byte first: a to q4_K
    EXPECT_EQ(a.bytes, 30u);
    EXPECT_THROW(quant::allocate_under_cost(t, 0.5), quant::Error);  // the best is 0.9
}

TEST(Allocation, WeightedErrorRanksTypesAndFollowsImportance) {
    std::mt19937 rng(7);
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<float> rows(4 * 256);
    for (float& v : rows) v = n(rng);
    const double e2 = quant::weighted_quantization_error(GgmlType::Q2_K, rows.data(), 4, 256, nullptr);
    const double e4 = quant::weighted_quantization_error(GgmlType::Q4_K, rows.data(), 4, 256, nullptr);
    const double e8 = quant::weighted_quantization_error(GgmlType::Q8_0, rows.data(), 4, 256, nullptr);
    EXPECT_GT(e2, e4);
    EXPECT_GT(e4, e8);
    EXPECT_GT(e8, 0.0);
    // importance only on the first column: the error is that column's alone
    std::vector<float> imp(256, 0.0f);
    imp[0] = 2.0f;
    const double e_first = quant::weighted_quantization_error(GgmlType::Q8_0, rows.data(), 4, 256, imp.data());
    EXPECT_GE(e_first, 0.0);
    EXPECT_LT(e_first, e8);
}

}  // namespace
