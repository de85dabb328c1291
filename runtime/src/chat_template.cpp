#include "runtime/chat_template.h"

#include <algorithm>
#include <ctime>

#include "runtime/error.h"

namespace runtime {

namespace {

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

std::string today() {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &local);
    return buf;
}

std::string harmony(const std::vector<ChatMessage>& messages, bool add_generation_prompt, const ChatOptions& o) {
    std::string out = "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                      "Knowledge cutoff: 2024-06\nCurrent date: " +
                      (o.date.empty() ? today() : o.date) + "\n\nReasoning: " + o.reasoning_effort +
                      "\n\n# Valid channels: analysis, commentary, final. Channel must be included for every "
                      "message.<|end|>";
    size_t first = 0;
    if (!messages.empty() && (messages[0].role == "system" || messages[0].role == "developer")) {
        if (!messages[0].content.empty()) {
            out += "<|start|>developer<|message|># Instructions\n\n" + messages[0].content + "\n\n<|end|>";
        }
        first = 1;
    }
    for (size_t i = first; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role == "user") {
            out += "<|start|>user<|message|>" + m.content + "<|end|>";
        } else if (m.role == "assistant") {
            const bool closing = i + 1 == messages.size() && !add_generation_prompt;
            out += "<|start|>assistant<|channel|>final<|message|>" + m.content + (closing ? "<|return|>" : "<|end|>");
        }
        // later system or developer messages are not rendered (the template only renders the first)
    }
    if (add_generation_prompt) out += "<|start|>assistant";
    return out;
}

}  // namespace

ChatFormat detect_chat_format(std::string_view t) {
    if (t.empty() || has(t, "<|im_start|>")) return ChatFormat::ChatMl;
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) return ChatFormat::Llama3;
    if (has(t, "<start_of_turn>")) return ChatFormat::Gemma;
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return ChatFormat::Phi3;
    if (has(t, "[INST]")) return ChatFormat::Llama2;
    if (has(t, "<|start|>") && has(t, "<|channel|>")) return ChatFormat::Harmony;
    throw Error("unsupported chat template (known: chatml, llama3, llama2, gemma, phi3, harmony)");
}

const char* chat_format_name(ChatFormat f) {
    switch (f) {
        case ChatFormat::ChatMl: return "chatml";
        case ChatFormat::Llama3: return "llama3";
        case ChatFormat::Llama2: return "llama2";
        case ChatFormat::Gemma: return "gemma";
        case ChatFormat::Phi3: return "phi3";
        case ChatFormat::Harmony: return "harmony";
    }
    return "?";
}

std::string format_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatOptions& options) {
    std::string out;
    switch (format) {
        case ChatFormat::ChatMl:
            for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
            if (add_generation_prompt) out += "<|im_start|>assistant\n";
            break;
        case ChatFormat::Llama3:
            // BOS comes from the tokenizer (add_bos_token), not from the text
            for (const auto& m : messages) {
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
            }
            if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
            break;
        case ChatFormat::Llama2: {
            // the system prompt rides inside the first [INST]; every later user turn opens a new <s>
            std::string system;
            bool first_user = true;
            for (const auto& m : messages) {
                if (m.role == "system") {
                    system = "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
                } else if (m.role == "user") {
                    out += (first_user ? "[INST] " : "<s>[INST] ") + system + m.content + " [/INST]";
                    system.clear();
                    first_user = false;
                } else {
                    out += " " + m.content + " </s>";
                }
            }
            break;
        }
        case ChatFormat::Gemma: {
            // no system role: its text is put before the first user turn
            std::string system;
            for (const auto& m : messages) {
                if (m.role == "system") {
                    system = m.content + "\n\n";
                    continue;
                }
                const std::string role = m.role == "assistant" ? "model" : m.role;
                out += "<start_of_turn>" + role + "\n" + system + m.content + "<end_of_turn>\n";
                system.clear();
            }
            if (add_generation_prompt) out += "<start_of_turn>model\n";
            break;
        }
        case ChatFormat::Phi3:
            for (const auto& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
            if (add_generation_prompt) out += "<|assistant|>\n";
            break;
        case ChatFormat::Harmony: out = harmony(messages, add_generation_prompt, options); break;
    }
    return out;
}

std::string chat_reply_content(ChatFormat format, const std::string& reply) {
    if (format != ChatFormat::Harmony) return reply;
    constexpr std::string_view final_open = "<|channel|>final<|message|>";
    const size_t at = reply.rfind(final_open);
    // no final channel (generation stopped early): whatever follows the last message marker
    size_t begin = at == std::string::npos ? reply.rfind("<|message|>") : at + final_open.size();
    if (begin == std::string::npos) {
        begin = 0;
    } else if (at == std::string::npos) {
        begin += std::string_view("<|message|>").size();
    }
    size_t end = reply.size();
    for (const std::string_view close : {"<|end|>", "<|return|>", "<|call|>"}) {
        end = std::min(end, reply.find(close, begin));
    }
    return reply.substr(begin, end - begin);
}

}  // namespace runtime
