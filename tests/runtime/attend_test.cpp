// attend_rows (the query heads of one KV group together) against attend (one head at a time): the
// same bits per row, at every SIMD level the CPU has; and attend against a double-precision softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu/ops.h"

namespace {

using runtime::cpu::kAttendPad;
using runtime::cpu::kAttendRows;

struct Shape {
    int hd, hdv, n_kv, rows;
};

class AttendRowsTest : public ::testing::TestWithParam<Shape> {};

TEST_P(AttendRowsTest, BitIdenticalToOneHeadAtATime) {
    const Shape c = GetParam();
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int padded = (c.n_kv + kAttendPad - 1) / kAttendPad * kAttendPad;
    const int64_t ld = padded + 16;
    std::vector<float> q(static_cast<size_t>(c.rows * c.hd)), kt(static_cast<size_t>(c.hd * ld)),
        v(static_cast<size_t>(c.n_kv * c.hdv));
    for (auto& x : q) x = normal(rng);
    for (auto& x : kt) x = normal(rng);
    for (auto& x : v) x = normal(rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));

    std::vector<float> one(static_cast<size_t>(c.rows * c.hdv)), many(one.size());
    std::vector<float> scores(static_cast<size_t>(padded) * kAttendRows);
    for (int r = 0; r < c.rows; ++r) {
        runtime::cpu::attend(q.data() + r * c.hd, scale, kt.data(), ld, c.hd, v.data(), c.hdv, c.n_kv, scores.data(),
                             one.data() + r * c.hdv);
    }
    std::vector<const float*> qs;
    std::vector<float*> outs;
    for (int r = 0; r < c.rows; ++r) {
        qs.push_back(q.data() + r * c.hd);
        outs.push_back(many.data() + r * c.hdv);
    }
    runtime::cpu::attend_rows(c.rows, qs.data(), scale, kt.data(), ld, c.hd, v.data(), c.hdv, c.n_kv, scores.data(), padded,
                              outs.data());
    for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(one[i], many[i]) << "element " << i;

    // and both are the softmax-weighted values, to float rounding
    for (int r = 0; r < c.rows; ++r) {
        std::vector<double> s(static_cast<size_t>(c.n_kv));
        double mx = -1e300, sum = 0;
        for (int p = 0; p < c.n_kv; ++p) {
            double d = 0;
            for (int k = 0; k < c.hd; ++k) d += double(q[r * c.hd + k]) * scale * kt[k * ld + p];
            s[p] = d;
            mx = std::max(mx, d);
        }
        for (auto& x : s) sum += (x = std::exp(x - mx));
        for (int k = 0; k < c.hdv; ++k) {
            double o = 0;
            for (int p = 0; p < c.n_kv; ++p) o += s[p] / sum * v[p * c.hdv + k];
            EXPECT_NEAR(many[r * c.hdv + k], o, 1e-4) << "row " << r << " dim " << k;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttendRowsTest,
                         ::testing::Values(Shape{128, 128, 1, 8}, Shape{128, 128, 37, 8}, Shape{128, 128, 300, 8},
                                           Shape{64, 64, 130, 4}, Shape{80, 80, 77, 3}, Shape{128, 128, 50, 11},
                                           Shape{96, 48, 33, 1}),
                         [](const auto& info) {
                             const Shape& s = info.param;
                             return "hd" + std::to_string(s.hd) + "_hdv" + std::to_string(s.hdv) + "_kv" +
                                    std::to_string(s.n_kv) + "_rows" + std::to_string(s.rows);
                         });

}  // namespace
