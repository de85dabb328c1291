// Sampler chain semantics and chat prompt formats.
#include <gtest/gtest.h>

#include <map>

#include "runtime/chat_template.h"
#include "runtime/error.h"
#include "runtime/sampler.h"

namespace {

using runtime::Sampler;
using runtime::SamplerParams;

const std::vector<float> kLogits{1.0f, 3.0f, 2.9f, -1.0f, 0.5f};

TEST(Sampler, GreedyTakesTheLargestLogit) {
    SamplerParams p;
    p.temperature = 0;
    Sampler s(p, 5);
    EXPECT_EQ(s.sample(kLogits), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveLogits) {
    SamplerParams p;
    p.temperature = 0;
    p.repeat_penalty = 1.5f;
    Sampler s(p, 5);
    s.accept(1);
    s.accept(1);  // counted once
    EXPECT_EQ(s.sample(kLogits), 2);  // 3.0 / 1.5 = 2.0 < 2.9
}

TEST(Sampler, PresenceAndFrequencyPenaltiesSubtract) {
    SamplerParams p;
    p.temperature = 0;
    p.presence_penalty = 0.05f;
    Sampler once(p, 5);
    once.accept(1);
    once.accept(1);
    EXPECT_EQ(once.sample(kLogits), 1);  // 3.0 - 0.05 = 2.95 > 2.9: presence counts a token once

    p.presence_penalty = 0;
    p.frequency_penalty = 0.06f;
    Sampler freq(p, 5);
    freq.accept(1);
    EXPECT_EQ(freq.sample(kLogits), 1);  // 3.0 - 0.06 = 2.94 > 2.9
    freq.accept(1);
    EXPECT_EQ(freq.sample(kLogits), 2);  // 3.0 - 2 * 0.06 = 2.88 < 2.9

    p.frequency_penalty = -1.0f;  // negative: encourage repeats
    Sampler more(p, 5);
    more.accept(3);
    EXPECT_EQ(more.sample(kLogits), 1);  // -1 + 1 = 0 < 3
    more.accept(3);
    more.accept(3);
    more.accept(3);
    more.accept(3);
    EXPECT_EQ(more.sample(kLogits), 3);  // -1 + 5 = 4 > 3
}

TEST(Sampler, TopKOneIsGreedyAtAnyTemperature) {
    SamplerParams p;
    p.temperature = 5.0f;
    p.top_k = 1;
    Sampler s(p, 5);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(kLogits), 1);
}

TEST(Sampler, MinPAndTopPCutTheTail) {
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.5f;  // keeps tokens with p >= p_max / 2: ids 1 and 2 only
    Sampler s(p, 5);
    std::map<int, int> seen;
    for (int i = 0; i < 400; ++i) seen[s.sample(kLogits)]++;
    EXPECT_EQ(seen.size(), 2u);
    EXPECT_GT(seen[1], 100);  // nearly even odds (e^3 vs e^2.9)
    EXPECT_GT(seen[2], 100);

    p.min_p = 0;
    p.top_p = 0.4f;  // the most likely token alone holds ~46%
    Sampler t(p, 5);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(t.sample(kLogits), 1);
}

TEST(Sampler, SeedMakesDrawsReproducible) {
    SamplerParams p;
    p.temperature = 1.5f;
    p.top_k = 0;
    p.min_p = 0;
    p.seed = 7;
    Sampler a(p, 5), b(p, 5);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits), b.sample(kLogits));
}

TEST(Sampler, BadParametersAreErrors) {
    for (auto set : {+[](SamplerParams& p) { p.temperature = -1; }, +[](SamplerParams& p) { p.top_p = 0; },
                     +[](SamplerParams& p) { p.min_p = 2; }, +[](SamplerParams& p) { p.repeat_penalty = 0; }}) {
        SamplerParams p;
        set(p);
        EXPECT_THROW(Sampler(p, 5), runtime::Error);
    }
}

TEST(ChatTemplate, DetectsFormatsByTheirMarkers) {
    using runtime::ChatFormat;
    using runtime::detect_chat_format;
    EXPECT_EQ(detect_chat_format(""), ChatFormat::ChatMl);
    EXPECT_EQ(detect_chat_format("{% for m in messages %}<|im_start|>{{m.role}}"), ChatFormat::ChatMl);
    EXPECT_EQ(detect_chat_format("<|start_header_id|>' + role + '<|end_header_id|>"), ChatFormat::Llama3);
    EXPECT_EQ(detect_chat_format("{{ bos_token + '[INST] ' + content + ' [/INST]' }}"), ChatFormat::Llama2);
    EXPECT_EQ(detect_chat_format("<start_of_turn>user"), ChatFormat::Gemma);
    EXPECT_EQ(detect_chat_format("<|user|>{{c}}<|end|><|assistant|>"), ChatFormat::Phi3);
    EXPECT_THROW(detect_chat_format("{{ messages }}"), runtime::Error);
}

TEST(ChatTemplate, FormatsAConversation) {
    const std::vector<runtime::ChatMessage> msgs{{"system", "Be brief."}, {"user", "Hi"}};
    EXPECT_EQ(runtime::format_chat(runtime::ChatFormat::ChatMl, msgs, true),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(runtime::format_chat(runtime::ChatFormat::Llama3, msgs, true),
              "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(runtime::format_chat(runtime::ChatFormat::Llama2, msgs, true),
              "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    EXPECT_EQ(runtime::format_chat(runtime::ChatFormat::Gemma, msgs, true),
              "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
}

}  // namespace
