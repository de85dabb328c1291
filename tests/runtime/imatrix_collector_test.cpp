// The importance-matrix collector on hand-made inputs: squared inputs summed per column, one count
// per row (per expert for stacked experts, by the routing), and llama-imatrix's selection of products.
#include <gtest/gtest.h>

#include "runtime/error.h"
#include "runtime/imatrix_collector.h"

namespace {

runtime::Weight weight(const std::string& name, int64_t n_in, int64_t n_mat = 1) {
    runtime::Weight w;
    w.name = name;
    w.n_in = n_in;
    w.n_out = 2;
    w.n_mat = n_mat;
    return w;
}

TEST(ImatrixCollector, SumsSquaresPerColumnAndCountsRows) {
    runtime::ImatrixCollector c({.process_output = false, .min_rows = 2});
    std::vector<float> rows = {1, 2, 99, 3, 4, 99};  // 2 rows of 2 columns, ld 3
    const runtime::Tensor x{rows.data(), 2, 2, 3, runtime::Device::cpu()};
    const runtime::Weight q = weight("blk.0.attn_q.weight", 2);
    c.matmul_input(q, x);
    c.matmul_input(q, x);
    const auto& s = c.data().entries.at("blk.0.attn_q.weight");
    EXPECT_EQ(s.sums, (std::vector<double>{20, 40}));
    EXPECT_EQ(s.counts, (std::vector<int64_t>{4}));

    // fewer rows than min_rows, the output head and non-block tensors are left out
    const runtime::Tensor one{rows.data(), 1, 2, 3, runtime::Device::cpu()};
    c.matmul_input(q, one);
    EXPECT_EQ(c.data().entries.at("blk.0.attn_q.weight").counts[0], 4);
    c.matmul_input(weight("output.weight", 2), x);
    c.matmul_input(weight("token_embd.weight", 2), x);
    EXPECT_EQ(c.data().entries.size(), 1u);

    runtime::ImatrixCollector with_output({.process_output = true, .min_rows = 2});
    with_output.matmul_input(weight("output.weight", 2), x);
    EXPECT_EQ(with_output.data().entries.count("output.weight"), 1u);
}

TEST(ImatrixCollector, ExpertsCountTheirOwnTokens) {
    runtime::ImatrixCollector c;
    // 2 tokens, top-2 of 3 experts: token 0 -> experts 2, 0; token 1 -> experts 0, 1
    std::vector<int32_t> ids = {2, 0, 0, 1};
    std::vector<float> weights = {0.5f, 0.5f, 0.5f, 0.5f};
    const runtime::Routing r{ids.data(), weights.data(), 2, 2, runtime::Device::cpu()};
    std::vector<float> tokens = {1, 2, 3, 4};           // per token (gate / up input)
    std::vector<float> slots = {1, 1, 2, 2, 3, 3, 4, 4};  // per slot (down input)
    const runtime::Weight up = weight("blk.0.ffn_up_exps.weight", 2, 3);
    const runtime::Weight down = weight("blk.0.ffn_down_exps.weight", 2, 3);
    c.expert_input(up, r, tokens.data(), 2, false);
    c.expert_input(down, r, slots.data(), 2, true);
    const auto& u = c.data().entries.at("blk.0.ffn_up_exps.weight");
    EXPECT_EQ(u.counts, (std::vector<int64_t>{2, 1, 1}));
    EXPECT_EQ(u.sums, (std::vector<double>{1 + 9, 4 + 16, 9, 16, 1, 4}));
    const auto& d = c.data().entries.at("blk.0.ffn_down_exps.weight");
    EXPECT_EQ(d.counts, (std::vector<int64_t>{2, 1, 1}));
    EXPECT_EQ(d.sums, (std::vector<double>{4 + 9, 4 + 9, 16, 16, 1, 1}));

    // an entry merged from another model's file does not fit
    runtime::ImatrixCollector other;
    other.data().entries["blk.0.ffn_up_exps.weight"] = {{1, 2}, {1}};
    EXPECT_THROW(other.expert_input(up, r, tokens.data(), 2, false), runtime::Error);
}

}  // namespace
