// Runs a GGUF over the HF oracle's token sequences and measures how close two sets of logits are
// (max absolute difference, same argmax), for the architecture and conversion tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "hf_refs.h"
#include "runtime/context.h"
#include "runtime/model.h"

namespace testing_support {

struct Agreement {
    double max_abs_diff = 0;
    int same_argmax = 0;
    int positions = 0;
};

inline int argmax_of(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// Logits of the first n_tok tokens of every sequence in `refs`, each decoded from position 0 with an
// f32 KV cache on one thread; rows are sequence-major (n_seq x n_tok x n_vocab).
inline std::vector<float> run_sequences(const std::string& model_path, const HfRefs& refs, int64_t n_tok) {
    const auto model = runtime::Model::load(model_path);
    runtime::ContextParams params;
    params.n_ctx = static_cast<int>(n_tok);
    params.type_k = params.type_v = gguf::GgmlType::F32;
    params.n_threads = 1;
    runtime::Context ctx(*model, params);
    std::vector<float> out;
    for (int64_t s = 0; s < refs.n_seq; ++s) {
        ctx.truncate(0);
        const auto logits = ctx.decode({refs.seq_tokens(s), static_cast<size_t>(n_tok)}, true);
        out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
}

inline void accumulate(Agreement& a, const float* ours, const float* theirs, int n_vocab) {
    for (int i = 0; i < n_vocab; ++i) a.max_abs_diff = std::max(a.max_abs_diff, std::fabs(double(ours[i]) - theirs[i]));
    a.same_argmax += argmax_of(ours, n_vocab) == argmax_of(theirs, n_vocab);
    ++a.positions;
}

// One line in the test's log: what was compared and how close it came.
inline void report(const Agreement& a, const std::string& what) {
    std::printf("%s: max |logit diff| %.3g, same argmax %lld/%lld\n", what.c_str(), a.max_abs_diff,
                static_cast<long long>(a.same_argmax), static_cast<long long>(a.positions));
}

// `ours` as run_sequences returns it, against HF's logits of the same positions.
inline Agreement agreement_with_hf(const std::vector<float>& ours, const HfRefs& refs, int64_t n_tok) {
    Agreement a;
    const int V = static_cast<int>(refs.n_vocab);
    for (int64_t s = 0; s < refs.n_seq; ++s) {
        for (int64_t t = 0; t < n_tok; ++t) accumulate(a, ours.data() + (s * n_tok + t) * V, refs.row_logits(s, t), V);
    }
    return a;
}

inline Agreement agreement(const std::vector<float>& ours, const std::vector<float>& theirs, int n_vocab) {
    Agreement a;
    for (size_t r = 0; r * n_vocab < ours.size() && r * n_vocab < theirs.size(); ++r) {
        accumulate(a, ours.data() + r * n_vocab, theirs.data() + r * n_vocab, n_vocab);
    }
    return a;
}

// The logits test's bar for "reproduces HF": what llama.cpp itself reaches on these fixtures.
inline void expect_matches_hf(const Agreement& a) {
    EXPECT_GT(a.positions, 0);
    EXPECT_LE(a.max_abs_diff, 1e-2);
    EXPECT_GE(a.same_argmax, static_cast<int>(std::ceil(0.995 * a.positions)));
}

}  // namespace testing_support
