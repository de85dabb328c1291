// Chat prompts in the formats of common models, recognised from the Jinja text of
// tokenizer.chat_template the way llama.cpp's llm_chat_detect_template does (by its marker tokens).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runtime {

enum class ChatFormat { ChatMl, Llama3, Llama2, Gemma, Phi3, Harmony };

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant" ("developer" too for Harmony)
    std::string content;
};

// What some formats print besides the messages. Harmony (gpt-oss) opens with a system message
// holding the date and the reasoning effort.
struct ChatOptions {
    std::string date;                       // YYYY-MM-DD; empty: today (local time), as strftime_now
    std::string reasoning_effort = "medium";  // low, medium or high
};

// An empty template (the model has none) gives ChatML, llama.cpp's fallback; a template with none of
// the known markers throws runtime::Error.
ChatFormat detect_chat_format(std::string_view jinja);
const char* chat_format_name(ChatFormat format);

// The conversation as prompt text (special tokens spelled out, to be tokenized with parse_special),
// ending with the opening of the assistant's turn when add_generation_prompt.
// Harmony as gpt-oss's template renders it without tools: its system message, the first system or
// developer message as the developer's instructions, user turns, and assistant turns as their final
// channel (<|return|> closing the last one when no generation prompt follows).
std::string format_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatOptions& options = {});

// The part of a generated reply that goes back into the conversation: the whole text, except for
// Harmony, where it is the final channel's message (the analysis channel is dropped, as the
// template drops it from earlier turns).
std::string chat_reply_content(ChatFormat format, const std::string& reply);

}  // namespace runtime
