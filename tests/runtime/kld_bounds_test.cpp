// The compact baseline's KL bounds on synthetic distributions: the lower bound never exceeds the exact KL
// and the upper bound never falls below it, whatever K; both are exact when K covers the vocabulary; and
// the upper bound is attained by a base distribution that puts its tail where the test model is least sure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/kld_baseline.h"

namespace {

std::vector<double> log_probs(const std::vector<float>& logits) {
    double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float v : logits) sum += std::exp(v - mx);
    std::vector<double> out;
    for (float v : logits) out.push_back(v - mx - std::log(sum));
    return out;
}

std::vector<float> random_logits(std::mt19937& rng, int n, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = d(rng);
    return v;
}

TEST(KldBounds, BracketTheExactKlForEveryK) {
    std::mt19937 rng(7);
    std::vector<double> scratch;
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 64 + trial % 200;
        const auto base = random_logits(rng, n, 1.0f + static_cast<float>(trial % 5));
        auto test = base;
        std::normal_distribution<float> noise(0.0f, 0.05f + 0.2f * static_cast<float>(trial % 4));
        for (auto& x : test) x += noise(rng);
        const double exact = runtime::kld_exact(base, test);
        for (int k : {1, 4, 32, n - 1}) {
            const auto row = runtime::compact_row(base, {k, 1.0}, 0);
            const auto b = runtime::kld_bounds(row, log_probs(test), scratch);
            EXPECT_LE(b.lower, exact + 1e-9) << "trial " << trial << " k " << k;
            EXPECT_GE(b.upper, exact - 1e-9) << "trial " << trial << " k " << k;
            // the documented width: U - L <= r * log(p_K * q_T / (r * q_min)), q over the tail tokens
            if (row.rest > 0) {
                const auto lq = log_probs(test);
                std::vector<bool> stored(lq.size(), false);
                for (int32_t id : row.ids) stored[static_cast<size_t>(id)] = true;
                double q_tail = 0, q_min = 1;
                for (size_t i = 0; i < lq.size(); ++i) {
                    if (stored[i]) continue;
                    q_tail += std::exp(lq[i]);
                    q_min = std::min(q_min, std::exp(lq[i]));
                }
                const double width = row.rest * std::log(std::exp(row.logp.back()) * q_tail / (row.rest * q_min));
                EXPECT_LE(b.upper - b.lower, width + 1e-9) << "trial " << trial << " k " << k;
            }
        }
    }
}

TEST(KldBounds, ExactWhenTheTopCoversTheVocabulary) {
    std::mt19937 rng(3);
    std::vector<double> scratch;
    const auto base = random_logits(rng, 100, 2.0f);
    const auto test = random_logits(rng, 100, 2.0f);
    const auto row = runtime::compact_row(base, {100, 1.0}, 5);
    EXPECT_EQ(row.rest, 0.0);
    const auto b = runtime::kld_bounds(row, log_probs(test), scratch);
    EXPECT_NEAR(b.lower, runtime::kld_exact(base, test), 1e-6);
    EXPECT_NEAR(b.upper, runtime::kld_exact(base, test), 1e-6);
}

TEST(KldBounds, UpperBoundIsAttainedByTheWorstTail) {
    // base: 4 likely tokens, then 60 tokens of equal probability p_K; the test model finds the last ones
    // least likely. Every tail token is at p_K, so the worst tail the bound assumes is the true one.
    std::vector<float> base(64, 0.0f), test(64, 0.0f);
    for (int i = 0; i < 4; ++i) base[static_cast<size_t>(i)] = 5.0f - static_cast<float>(i);
    for (int i = 0; i < 64; ++i) test[static_cast<size_t>(i)] = base[static_cast<size_t>(i)] - 0.1f * static_cast<float>(i);
    std::vector<double> scratch;
    const auto row = runtime::compact_row(base, {5, 1.0}, 0);
    const auto b = runtime::kld_bounds(row, log_probs(test), scratch);
    EXPECT_NEAR(b.upper, runtime::kld_exact(base, test), 1e-9);
    EXPECT_LT(b.lower, b.upper);
}

TEST(KldBounds, CompactRowKeepsTheMostLikelyTokensAndTheRest) {
    const std::vector<float> logits{0.0f, 3.0f, 1.0f, 2.0f, -1.0f};
    const auto row = runtime::compact_row(logits, {2, 1.0}, 4);
    ASSERT_EQ(row.ids, (std::vector<int32_t>{1, 3}));
    const auto lp = log_probs(logits);
    EXPECT_NEAR(row.logp[0], lp[1], 1e-6);
    EXPECT_NEAR(row.logp[1], lp[3], 1e-6);
    EXPECT_NEAR(row.rest, std::exp(lp[0]) + std::exp(lp[2]) + std::exp(lp[4]), 1e-12);
    EXPECT_NEAR(row.logp_next, lp[4], 1e-6);
}

TEST(KldBounds, CompactRowGrowsUntilTheRestIsSmall) {
    std::mt19937 rng(11);
    const auto logits = random_logits(rng, 500, 1.5f);
    const auto row = runtime::compact_row(logits, {4, 1e-3}, 0);
    EXPECT_LE(row.rest, 1e-3);
    EXPECT_GT(row.ids.size(), 4u);
    // the smallest set that does it: one token fewer would leave more than 1e-3
    EXPECT_GT(row.rest + std::exp(row.logp.back()), 1e-3);
    for (size_t j = 1; j < row.logp.size(); ++j) EXPECT_LE(row.logp[j], row.logp[j - 1]);
}

}  // namespace
