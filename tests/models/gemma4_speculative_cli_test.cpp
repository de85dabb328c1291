// gguf-run -md with a gemma4-assistant draft on the tiny Gemma 4 reference: every emitted token is the
// target's own sample, so greedy output equals plain decoding's whatever the draft proposes (the tiny
// draft's random weights propose almost nothing the target accepts: acceptance is reported, not bounded),
// and the drafted/accepted counts are printed. Mismatched drafts and chat mode are refused.
#include <gtest/gtest.h>

#include <string>

#include "convert/converter.h"
#include "reference_outputs.h"
#include "run_command.h"
#include "runtime/context.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"
#include "speculative.h"

namespace {

// A checkpoint of the gemma4 reference converted to F32, once per run.
std::string converted(const std::string& checkpoint) {
    static const testing_support::ReferenceFiles gemma4("gemma4");
    return gemma4.converted(convert::OutType::F32, checkpoint + ".gguf", checkpoint);
}

TEST(Gemma4Speculative, GreedyOutputEqualsPlainDecoding) {
    const std::string target = converted("hf"), draft = converted("hf-assistant");
    const std::string common = "-m '" + target + "' -p 'the quick brown fox' -n 20 --temp 0 -c 64 -t 1 --ignore-eos";
    const auto plain = testing_support::run_app("gguf-run", common);
    ASSERT_EQ(plain.status, 0) << plain.err;
    for (const char* k : {"1", "3"}) {
        const auto spec = testing_support::run_app("gguf-run", common + " -md '" + draft + "' --draft-max " + k);
        ASSERT_EQ(spec.status, 0) << spec.err;
        EXPECT_EQ(spec.out, plain.out) << k;
        EXPECT_NE(spec.err.find("draft: "), std::string::npos) << spec.err;
        EXPECT_NE(spec.err.find("generation: 20 tokens"), std::string::npos) << spec.err;
    }
}

// The verification loop with proposers that know the target's greedy continuation: all right (every
// draft accepted), or wrong at every third position (accepted up to the first miss, then the target's
// correction): the output is the plain greedy one either way, and the counts say what was accepted.
TEST(Gemma4Speculative, AcceptsWhatTheTargetWouldSample) {
    const auto model = runtime::Model::load(converted("hf"));
    const auto tok = runtime::Tokenizer::from_metadata(model->metadata());
    runtime::ContextParams cp;
    cp.n_ctx = 64;
    cp.n_threads = 1;
    runtime::SamplerParams sp;
    sp.temperature = 0;
    const std::vector<int32_t> prompt = tok->encode("the quick brown fox", true, true);
    const int n = 24;
    std::vector<int32_t> seq = prompt;  // prompt + the plain greedy continuation
    {
        runtime::Context ctx(*model, cp);
        runtime::Sampler sampler(sp, ctx.n_vocab());
        auto logits = ctx.decode(prompt);
        for (int i = 0; i < n; ++i) {
            const int32_t t = sampler.sample(logits);
            sampler.accept(t);
            seq.push_back(t);
            logits = ctx.decode({&t, 1});
        }
    }
    const int V = static_cast<int>(tok->n_vocab());
    for (const bool every_third : {false, true}) {
        for (const int k : {1, 4}) {
            runtime::Context ctx(*model, cp);
            runtime::Sampler sampler(sp, ctx.n_vocab());
            const Proposer oracle = [&](int32_t, int pos, int, std::vector<float>&) {
                const int32_t right = static_cast<size_t>(pos + 1) < seq.size() ? seq[static_cast<size_t>(pos) + 1] : 0;
                return every_third && pos % 3 == 1 ? (right + 1) % V : right;
            };
            std::vector<int32_t> got;
            SpeculativeStats stats;
            std::string text;
            generate_speculative(ctx, *tok, sampler, prompt, n, true, {}, k, oracle, stats,
                                 [&](const std::string& piece) { text += piece; });
            runtime::StreamingDecoder plain(*tok);
            std::string want;
            for (size_t i = prompt.size(); i < seq.size(); ++i) want += plain.push(seq[i]);
            want += plain.flush();
            EXPECT_EQ(text, want) << every_third << k;
            EXPECT_EQ(stats.generated, n);
            EXPECT_GT(stats.accepted, 0) << every_third << k;
            if (every_third) {
                EXPECT_LT(stats.accepted, stats.drafted) << k;
            } else {
                EXPECT_EQ(stats.accepted, stats.drafted) << k;
                // k + 1 tokens a step (the last step may be cut by n)
                EXPECT_LE(stats.steps, (n + k) / (k + 1)) << k;
            }
        }
    }
}

TEST(Gemma4Speculative, Refusals) {
    const std::string target = converted("hf"), draft = converted("hf-assistant");
    // a gemma4 model is not a draft head
    const auto wrong = testing_support::run_app("gguf-run", "-m '" + target + "' -p 'the' -n 2 -md '" + target + "'");
    EXPECT_EQ(wrong.status, 1);
    EXPECT_NE(wrong.err.find("error: --model-draft: only a gemma4-assistant"), std::string::npos) << wrong.err;
    // a draft head cannot run alone
    const auto alone = testing_support::run_app("gguf-run", "-m '" + draft + "' -p 'the' -n 2");
    EXPECT_EQ(alone.status, 1);
    EXPECT_NE(alone.err.find("cannot run alone"), std::string::npos) << alone.err;
    const auto chat = testing_support::run_app("gguf-run", "-m '" + target + "' -cnv -md '" + draft + "'");
    EXPECT_EQ(chat.status, 2) << chat.err;
    const auto bad = testing_support::run_app("gguf-run", "-m '" + target + "' -p 'the' -md '" + draft + "' --draft-max 0");
    EXPECT_EQ(bad.status, 2) << bad.err;
}

}  // namespace
