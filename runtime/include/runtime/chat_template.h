// Chat prompts in the formats of common models, recognised from the Jinja text of
// tokenizer.chat_template the way llama.cpp's llm_chat_detect_template does (by its marker tokens).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runtime {

enum class ChatFormat { ChatMl, Llama3, Llama2, Gemma, Phi3 };

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// An empty template (the model has none) gives ChatML, llama.cpp's fallback; a template with none of
// the known markers throws runtime::Error.
ChatFormat detect_chat_format(std::string_view jinja);
const char* chat_format_name(ChatFormat format);

// The conversation as prompt text (special tokens spelled out, to be tokenized with parse_special),
// ending with the opening of the assistant's turn when add_generation_prompt.
std::string format_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt);

}  // namespace runtime
