// Each sampler stage against distributions computed by hand (the numbers are in the comments), the
// chain's order, logit bias, mirostat and determinism with a seed.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/error.h"
#include "runtime/sampler.h"
#include "runtime/sampler_stages.h"

namespace {

using namespace runtime;

// Candidates with the given probabilities (logits log p), ids 0..n-1, untouched (identity order).
Candidates from_probs(const std::vector<float>& p) {
    Candidates c;
    for (size_t i = 0; i < p.size(); ++i) c.items.push_back({std::log(p[i]), static_cast<int32_t>(i), 0.0f});
    c.identity = true;
    return c;
}
Candidates from_logits(const std::vector<float>& l) {
    Candidates c;
    for (size_t i = 0; i < l.size(); ++i) c.items.push_back({l[i], static_cast<int32_t>(i), 0.0f});
    c.identity = true;
    return c;
}
std::vector<int32_t> ids(const Candidates& c) {
    std::vector<int32_t> out;
    for (const auto& x : c.items) out.push_back(x.id);
    return out;
}
std::vector<int32_t> sorted_ids(const Candidates& c) {
    auto v = ids(c);
    std::sort(v.begin(), v.end());
    return v;
}

const std::vector<float> kP{0.5f, 0.3f, 0.15f, 0.05f};

TEST(SamplerStages, TopKKeepsTheLargest) {
    auto c = from_logits({1.0f, 3.0f, 2.9f, -1.0f, 0.5f});
    apply_top_k(c, 2);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 2}));
    auto all = from_logits({1.0f, 3.0f});
    apply_top_k(all, 0);
    EXPECT_EQ(all.items.size(), 2u);
}

TEST(SamplerStages, TopPStopsWhenTheSumReachesP) {
    auto c = from_probs(kP);
    apply_top_p(c, 0.85f);  // 0.5, 0.8, 0.95 >= 0.85: three tokens
    EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2}));
    auto one = from_probs(kP);
    apply_top_p(one, 0.4f);  // 0.5 >= 0.4 at once
    EXPECT_EQ(ids(one), (std::vector<int32_t>{0}));
}

TEST(SamplerStages, MinPIsRelativeToTheTop) {
    auto c = from_probs(kP);
    apply_min_p(c, 0.35f);  // p >= 0.35 * 0.5 = 0.175: 0.5 and 0.3
    EXPECT_EQ(sorted_ids(c), (std::vector<int32_t>{0, 1}));
}

TEST(SamplerStages, TypicalKeepsTokensNearTheEntropy) {
    // H = -(0.5 ln 0.5 + 0.3 ln 0.3 + 0.15 ln 0.15 + 0.05 ln 0.05) = 1.1421
    // |-ln p - H| = 0.4490 (0.5), 0.0619 (0.3), 0.7550 (0.15), 1.8536 (0.05): order 1, 0, 2, 3
    auto c = from_probs(kP);
    apply_typical(c, 0.5f);  // 0.3 (not > 0.5), 0.8 > 0.5: ids 1 and 0, in that order
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 0}));
    auto one = from_probs(kP);
    apply_typical(one, 0.2f);  // 0.3 > 0.2 at once
    EXPECT_EQ(ids(one), (std::vector<int32_t>{1}));
    auto off = from_probs(kP);
    apply_typical(off, 1.0f);
    EXPECT_EQ(off.items.size(), 4u);
}

TEST(SamplerStages, TopNSigmaCutsBelowMaxMinusNStd) {
    // logits 4, 3, 0, -1: mean 1.5, variance (6.25 + 2.25 + 2.25 + 6.25) / 4 = 4.25, sigma 2.0616
    auto c = from_logits({4.0f, 3.0f, 0.0f, -1.0f});
    apply_top_n_sigma(c, 1.0f);  // cut at 4 - 2.06 = 1.94
    EXPECT_EQ(sorted_ids(c), (std::vector<int32_t>{0, 1}));
    auto wide = from_logits({4.0f, 3.0f, 0.0f, -1.0f});
    apply_top_n_sigma(wide, 2.0f);  // cut at 4 - 4.12 = -0.12: -1 goes
    EXPECT_EQ(sorted_ids(wide), (std::vector<int32_t>{0, 1, 2}));
    auto inf = from_logits({4.0f, 3.0f, 0.0f, -1.0f, -INFINITY});  // -inf is left out of mean and sigma
    apply_top_n_sigma(inf, 1.0f);
    EXPECT_EQ(sorted_ids(inf), (std::vector<int32_t>{0, 1}));
}

TEST(SamplerStages, XtcRemovesAllTopChoicesButTheLeastProbable) {
    std::mt19937_64 rng(1);
    auto c = from_probs(kP);
    apply_xtc(c, 1.0f, 0.2f, rng);  // 0.5 and 0.3 reach 0.2: 0.5 goes, 0.3 stays
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 2, 3}));
    auto single = from_probs(kP);
    apply_xtc(single, 1.0f, 0.4f, rng);  // only 0.5 reaches 0.4: nothing excluded
    EXPECT_EQ(single.items.size(), 4u);
    auto off = from_probs(kP);
    apply_xtc(off, 1.0f, 0.6f, rng);  // threshold > 0.5: off
    EXPECT_EQ(off.items.size(), 4u);
    // with probability 0.5 the coin decides: about half of the calls exclude
    int excluded = 0;
    for (int i = 0; i < 2000; ++i) {
        auto x = from_probs(kP);
        apply_xtc(x, 0.5f, 0.2f, rng);
        excluded += x.items.size() == 3;
    }
    EXPECT_NEAR(excluded, 1000, 120);
}

TEST(SamplerStages, MinKeepLeavesAtLeastThatMany) {
    auto tp = from_probs(kP);
    apply_top_p(tp, 0.4f, 3);  // 0.5 reaches 0.4, but three must stay
    EXPECT_EQ(ids(tp), (std::vector<int32_t>{0, 1, 2}));
    auto mp = from_probs(kP);
    apply_min_p(mp, 0.9f, 2);  // only 0.5 passes 0.45: the two most probable
    EXPECT_EQ(ids(mp), (std::vector<int32_t>{0, 1}));
    auto ty = from_probs(kP);
    apply_typical(ty, 0.2f, 3);  // order 1, 0, 2, 3 (see above): three kept
    EXPECT_EQ(ids(ty), (std::vector<int32_t>{1, 0, 2}));
    std::mt19937_64 rng(1);
    auto xt = from_probs(kP);
    apply_xtc(xt, 1.0f, 0.2f, rng, 4);  // removing 0.5 would leave 3 < 4: nothing removed
    EXPECT_EQ(xt.items.size(), 4u);
}

TEST(SamplerStages, TemperatureScalesAndZeroIsGreedy) {
    auto c = from_logits({1.0f, 2.0f});
    apply_temperature(c, 0.5f, 0.0f, 1.0f);
    EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f);
    EXPECT_FLOAT_EQ(c.items[1].logit, 4.0f);
    softmax(c, true);
    EXPECT_NEAR(c.items[0].p, 0.880797f, 1e-5);  // e^4 / (e^2 + e^4)
    auto g = from_logits({1.0f, 3.0f, 3.0f, 2.0f});
    apply_temperature(g, 0.0f, 0.0f, 1.0f);
    EXPECT_EQ(ids(g), (std::vector<int32_t>{1}));  // ties: the lower id
}

TEST(SamplerStages, DynamicTemperatureFollowsTheEntropy) {
    // two equal logits: entropy = max entropy, so T = temp + range = 1.5
    auto flat = from_logits({1.0f, 1.0f});
    apply_temperature(flat, 1.0f, 0.5f, 1.0f);
    EXPECT_NEAR(flat.items[0].logit, 1.0f / 1.5f, 1e-6);
    // p = 0.9, 0.1: H = 0.3251, max ln 2 = 0.6931, ratio 0.4690; T = 0.5 + 1.0 * 0.4690^2 = 0.7200
    auto c = from_probs({0.9f, 0.1f});
    apply_temperature(c, 1.0f, 0.5f, 2.0f);
    EXPECT_NEAR(c.items[0].logit, std::log(0.9f) / 0.71999f, 1e-3);
}

TEST(SamplerStages, PenaltiesCountEachDistinctTokenOnce) {
    auto c = from_logits({2.0f, -2.0f, 1.0f});
    const std::vector<int32_t> window{0, 0, 1};
    apply_penalties(c, window, 2.0f, 0.1f, 0.5f);
    EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f / 2 - 2 * 0.1f - 0.5f);   // 0.3
    EXPECT_FLOAT_EQ(c.items[1].logit, -2.0f * 2 - 1 * 0.1f - 0.5f);  // -4.6
    EXPECT_FLOAT_EQ(c.items[2].logit, 1.0f);
}

// DRY over a vocabulary 0:a 1:b 2:c 3:d 4:x 5:"\n"
const std::vector<std::string> kPieces{"a", "b", "c", "d", "x", "\n"};
Candidates flat6() { return from_logits(std::vector<float>(6, 0.0f)); }

TEST(SamplerStages, DryPenalisesTheTokenThatExtendsARepeat) {
    const DryParams p{0.8f, 1.75f, 2};
    const DryBreakers none({}, kPieces);
    // a b c x a b: 'c' would make "a b" (length 2) longer: penalty 0.8 * 1.75^0
    auto c = flat6();
    const std::vector<int32_t> w1{0, 1, 2, 4, 0, 1};
    apply_dry(c, w1, p, none, kPieces);
    EXPECT_FLOAT_EQ(c.items[2].logit, -0.8f);
    for (int id : {0, 1, 3, 4, 5}) EXPECT_FLOAT_EQ(c.items[static_cast<size_t>(id)].logit, 0.0f) << id;
    // a b c d x a b c: 'd' extends "a b c" (3): 0.8 * 1.75^1
    auto c3 = flat6();
    const std::vector<int32_t> w2{0, 1, 2, 3, 4, 0, 1, 2};
    apply_dry(c3, w2, p, none, kPieces);
    EXPECT_FLOAT_EQ(c3.items[3].logit, -0.8f * 1.75f);
    // a repeat of 1 token is allowed (allowed length 2)
    auto short_rep = flat6();
    const std::vector<int32_t> w3{0, 1, 4, 2, 3, 0};
    apply_dry(short_rep, w3, p, none, kPieces);
    for (const auto& x : short_rep.items) EXPECT_FLOAT_EQ(x.logit, 0.0f);
}

TEST(SamplerStages, DrySequenceBreakersLimitTheRepeat) {
    const DryParams p{0.8f, 1.75f, 2};
    const DryBreakers nl({"\n"}, kPieces);
    const DryBreakers none({}, kPieces);
    // a \n b x a \n b: "a \n b" repeats, but it reaches back past a newline: only "b" (1) counts
    const std::vector<int32_t> w{0, 5, 1, 4, 0, 5, 1};
    auto without = flat6();
    apply_dry(without, w, p, none, kPieces);
    EXPECT_FLOAT_EQ(without.items[4].logit, -0.8f * 1.75f);  // 'x' extends a repeat of 3
    auto with = flat6();
    apply_dry(with, w, p, nl, kPieces);
    EXPECT_FLOAT_EQ(with.items[4].logit, 0.0f);
    // a breaker token itself is never penalised: a b \n x a b: '\n' would extend "a b"
    const std::vector<int32_t> w2{0, 1, 5, 4, 0, 1};
    auto brk = flat6();
    apply_dry(brk, w2, p, nl, kPieces);
    EXPECT_FLOAT_EQ(brk.items[5].logit, 0.0f);
    auto nobrk = flat6();
    apply_dry(nobrk, w2, p, none, kPieces);
    EXPECT_FLOAT_EQ(nobrk.items[5].logit, -0.8f);
    // a breaker split across tokens counts too: "c" + "d" with the breaker "cd"
    const DryBreakers cd({"cd"}, kPieces);
    const std::vector<int32_t> w3{2, 3, 0, 1, 4, 2, 3, 0, 1};  // c d a b x c d a b
    auto split = flat6();
    apply_dry(split, w3, p, cd, kPieces);
    EXPECT_FLOAT_EQ(split.items[4].logit, -0.8f);  // the repeat stops at the breaker: "a b" (2)
    auto whole = flat6();
    apply_dry(whole, w3, p, none, kPieces);
    EXPECT_FLOAT_EQ(whole.items[4].logit, -0.8f * 1.75f * 1.75f);  // "c d a b" (4)
    EXPECT_FALSE(cd.single_token[2]);
}

TEST(SamplerStages, MirostatV2TruncatesBySurprise) {
    // surprise -log2 p: 1, 1.737, 2.737, 4.32; mu = 2 keeps 0.5 and 0.3 (renormalised 0.625, 0.375)
    std::mt19937_64 rng(7);
    std::map<int32_t, int> seen;
    for (int i = 0; i < 400; ++i) {
        auto c = from_probs(kP);
        float mu = 2.0f;
        const int32_t id = mirostat_v2(c, 1.0f, 0.1f, mu, rng);
        seen[id]++;
        const float p = id == 0 ? 0.625f : 0.375f;
        EXPECT_NEAR(mu, 2.0f - 0.1f * (-std::log2(p) - 1.0f), 1e-5);
    }
    EXPECT_EQ(seen.size(), 2u);
    EXPECT_NEAR(seen[0], 250, 40);
}

TEST(SamplerStages, MirostatV1EstimatesZipfAndTruncates) {
    // p_i ~ 1/(i+1)^2 over 1000 tokens: s = 2, eps = 1; mu = 4: k = (16 / (1 - 1000^-1))^(1/2) = 4.002 -> 4
    std::vector<float> p(1000);
    double sum = 0;
    for (size_t i = 0; i < p.size(); ++i) sum += 1.0 / ((i + 1.0) * (i + 1.0));
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(1.0 / ((i + 1.0) * (i + 1.0)) / sum);
    std::mt19937_64 rng(3);
    std::map<int32_t, int> seen;
    for (int i = 0; i < 300; ++i) {
        auto c = from_probs(p);
        float mu = 4.0f;
        seen[mirostat_v1(c, 1000, 2.0f, 0.1f, mu, rng)]++;
    }
    EXPECT_EQ(seen.rbegin()->first, 3);  // ids 0..3 only, and 3 (p 0.0455 after truncation) does occur
}

TEST(SamplerStages, OrderNamesAndLetters) {
    EXPECT_EQ(sampler_order_to_string(default_sampler_order()),
              "penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature");
    EXPECT_EQ(sampler_order_from_letters("edskypmxt"), default_sampler_order());
    EXPECT_EQ(sampler_order_from_names("Top-K;TEMP,nucleus;minp;typ;top_n_sigma"),
              (std::vector<SamplerStage>{SamplerStage::TopK, SamplerStage::Temperature, SamplerStage::TopP,
                                         SamplerStage::MinP, SamplerStage::TypicalP, SamplerStage::TopNSigma}));
    EXPECT_THROW(sampler_order_from_names("top_k;bogus"), Error);
    EXPECT_THROW(sampler_order_from_names("infill"), Error);
    EXPECT_THROW(sampler_order_from_letters("kq"), Error);
}

TEST(SamplerChain, OrderChangesTheResult) {
    // p = 0.5, 0.3, 0.2 and top-p 0.6: before the temperature two tokens survive; after a temperature of
    // 0.1 the top token has p ~ 0.994 and stays alone
    const std::vector<float> logits{std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    SamplerParams p;
    p.top_k = 0;
    p.min_p = 0;
    p.top_p = 0.6f;
    p.temperature = 0.1f;
    Sampler dflt(p, 3);
    EXPECT_EQ(dflt.distribution(logits).size(), 2u);
    p.order = sampler_order_from_names("temperature;top_p");
    Sampler temp_first(p, 3);
    EXPECT_EQ(temp_first.distribution(logits).size(), 1u);
    // stages left out of the list do not run: no penalties without "penalties"
    p.order = sampler_order_from_names("top_k");
    p.top_k = 1;
    p.repeat_penalty = 100.0f;
    Sampler no_pen(p, 3);
    no_pen.accept(0);
    EXPECT_EQ(no_pen.sample(logits), 0);
}

TEST(SamplerChain, DistributionIsTheSoftmaxOfWhatSurvives) {
    SamplerParams p;
    p.top_k = 2;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.temperature = 1.0f;
    Sampler s(p, 4);
    const auto d = s.distribution(std::vector<float>{0.0f, 1.0f, 2.0f, -5.0f});
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].first, 2);
    EXPECT_NEAR(d[0].second, 0.731059f, 1e-5);  // e / (1 + e)
}

TEST(SamplerChain, LogitBiasComesFirst) {
    SamplerParams p;
    p.temperature = 0;
    p.logit_bias = {{3, 10.0f}};
    Sampler up(p, 5);
    EXPECT_EQ(up.sample(std::vector<float>{1.0f, 3.0f, 2.9f, -1.0f, 0.5f}), 3);  // -1 + 10 = 9
    p.logit_bias = {{1, -INFINITY}};
    Sampler ban(p, 5);
    EXPECT_EQ(ban.sample(std::vector<float>{1.0f, 3.0f, 2.9f, -1.0f, 0.5f}), 2);
    p.logit_bias = {{-1, 1.0f}};
    EXPECT_THROW(Sampler(p, 5), Error);
}

TEST(SamplerChain, MirostatReplacesTheChain) {
    SamplerParams p;
    p.mirostat = 2;
    p.mirostat_tau = 0.5f;  // mu = 1: only tokens with surprise <= 1 bit, i.e. p >= 0.5
    p.top_k = 1;            // ignored under mirostat
    p.temperature = 1.0f;
    Sampler s(p, 4);
    const std::vector<float> logits{std::log(0.3f), std::log(0.6f), std::log(0.05f), std::log(0.05f)};
    EXPECT_EQ(s.sample(logits), 1);
}

TEST(SamplerChain, SameSeedSameDrawsWithEveryStage) {
    SamplerParams p;
    p.temperature = 1.2f;
    p.top_k = 0;
    p.typical_p = 0.95f;
    p.top_n_sigma = 3.0f;
    p.xtc_probability = 0.5f;
    p.dry_multiplier = 0.5f;
    p.repeat_penalty = 1.1f;
    p.seed = 1234;
    std::vector<float> logits(64);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 3;
    const auto run = [&](uint64_t seed) {
        p.seed = seed;
        Sampler s(p, 64);
        std::vector<int32_t> out;
        for (int i = 0; i < 200; ++i) {
            out.push_back(s.sample(logits));
            s.accept_generated(out.back());
        }
        return out;
    };
    EXPECT_EQ(run(1234), run(1234));
    EXPECT_NE(run(1234), run(99));
}

TEST(SamplerChain, NewParametersAreChecked) {
    const auto bad = [](auto set) {
        SamplerParams p;
        set(p);
        EXPECT_THROW(validate_sampler_params(p), Error);
    };
    bad([](SamplerParams& p) { p.typical_p = 0; });
    bad([](SamplerParams& p) { p.xtc_probability = 2; });
    bad([](SamplerParams& p) { p.mirostat = 3; });
    bad([](SamplerParams& p) { p.dry_penalty_last_n = -1; });
    bad([](SamplerParams& p) { p.top_n_sigma = NAN; });
    bad([](SamplerParams& p) { p.grammar = "root ::= ("; });
    SamplerParams g;
    EXPECT_FALSE(g.needs_vocabulary());
    g.dry_multiplier = 0.5f;
    EXPECT_TRUE(g.needs_vocabulary());  // DRY's breakers are text
    g.dry_sequence_breakers.clear();
    EXPECT_FALSE(g.needs_vocabulary());
    g.grammar = "root ::= \"a\"";
    EXPECT_TRUE(g.needs_vocabulary());
    EXPECT_THROW(Sampler(g, 4), Error);  // a grammar needs the vocabulary
}

}  // namespace

namespace {

TEST(SamplerChain, GrammarConstrainsTheDrawAndEndsWithEndOfGeneration) {
    // 0 "a", 1 "b", 2 "c", 3 "ab", 4 end of generation; the model prefers "c", then the end
    runtime::SamplerVocab vocab;
    vocab.pieces = {"a", "b", "c", "ab", ""};
    vocab.texts = vocab.pieces;
    vocab.end_of_generation = {false, false, false, false, true};
    runtime::SamplerParams p;
    p.temperature = 0;
    p.grammar = "root ::= \"ab\" \"c\"";
    runtime::Sampler s(p, 5, vocab);
    const std::vector<float> logits{1.0f, 2.0f, 10.0f, 0.5f, 5.0f};
    std::vector<int32_t> out;
    for (int i = 0; i < 4; ++i) {
        out.push_back(s.sample(logits));
        if (out.back() == 4) break;
        s.accept_generated(out.back());
    }
    EXPECT_EQ(out, (std::vector<int32_t>{0, 1, 2, 4}));  // "a" (masked greedy), "b", "c", then only the end
    EXPECT_TRUE(s.grammar_complete());
    s.reset_grammar();
    EXPECT_FALSE(s.grammar_complete());
    // with sampling instead of greedy every draw still follows the grammar
    p.temperature = 1.5f;
    p.top_k = 0;
    p.min_p = 0;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        p.seed = seed;
        runtime::Sampler r(p, 5, vocab);
        std::string text;
        for (int32_t t; (t = r.sample(logits)) != 4;) {
            r.accept_generated(t);
            text += vocab.pieces[static_cast<size_t>(t)];
        }
        EXPECT_EQ(text, "abc") << seed;
    }
}

}  // namespace
