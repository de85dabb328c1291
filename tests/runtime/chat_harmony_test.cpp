// gpt-oss's Harmony chat format: recognised by its markers and rendered as its chat template renders
// a conversation without tools (the expected texts follow the template's literal pieces: the system
// message with date and reasoning effort, the developer instructions, final-channel assistant turns).
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "runtime/chat_template.h"

namespace {

using runtime::ChatFormat;

const std::string kSystem =
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: 2026-11-29\n\nReasoning: high\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>";

TEST(ChatHarmony, DetectedByItsMarkers) {
    EXPECT_EQ(runtime::detect_chat_format("{{- \"<|start|>system<|message|>\" }} ... <|channel|>final"), ChatFormat::Harmony);
    EXPECT_STREQ(runtime::chat_format_name(ChatFormat::Harmony), "harmony");
}

TEST(ChatHarmony, RendersAConversation) {
    const runtime::ChatOptions opt{"2026-11-29", "high"};
    const std::vector<runtime::ChatMessage> msgs{
        {"system", "Answer briefly."}, {"user", "Name a colour."}, {"assistant", "Blue."}, {"user", "Another?"}};
    EXPECT_EQ(runtime::format_chat(ChatFormat::Harmony, msgs, true, opt),
              kSystem + "<|start|>developer<|message|># Instructions\n\nAnswer briefly.\n\n<|end|>"
                        "<|start|>user<|message|>Name a colour.<|end|>"
                        "<|start|>assistant<|channel|>final<|message|>Blue.<|end|>"
                        "<|start|>user<|message|>Another?<|end|><|start|>assistant");
    // without a generation prompt the last assistant turn closes with <|return|>
    const std::vector<runtime::ChatMessage> done{{"user", "Hi"}, {"assistant", "Hello."}};
    EXPECT_EQ(runtime::format_chat(ChatFormat::Harmony, done, false, opt),
              kSystem + "<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>Hello.<|return|>");
    // an empty first system message adds no developer message; the default effort is medium
    const std::string medium = runtime::format_chat(ChatFormat::Harmony, {{"system", ""}, {"user", "x"}}, true,
                                                    runtime::ChatOptions{"2026-11-29"});
    EXPECT_EQ(medium.find("<|start|>developer"), std::string::npos);
    EXPECT_NE(medium.find("Reasoning: medium\n\n"), std::string::npos);
    // without a date, today's (the template's strftime_now)
    const std::string today = runtime::format_chat(ChatFormat::Harmony, {{"user", "x"}}, true);
    EXPECT_TRUE(std::regex_search(today, std::regex("Current date: [0-9]{4}-[0-9]{2}-[0-9]{2}\n"))) << today;
}

TEST(ChatHarmony, ReplyKeepsTheFinalChannel) {
    EXPECT_EQ(runtime::chat_reply_content(ChatFormat::Harmony,
                                          "<|channel|>analysis<|message|>thinking...<|end|><|start|>assistant"
                                          "<|channel|>final<|message|>Blue.<|return|>"),
              "Blue.");
    // cut off before the final channel: the last message's text
    EXPECT_EQ(runtime::chat_reply_content(ChatFormat::Harmony, "<|channel|>analysis<|message|>still thinking"),
              "still thinking");
    EXPECT_EQ(runtime::chat_reply_content(ChatFormat::ChatMl, "<b>as is</b>"), "<b>as is</b>");
}

}  // namespace
