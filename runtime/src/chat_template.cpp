#include "runtime/chat_template.h"

#include "runtime/error.h"

namespace runtime {

namespace {

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

}  // namespace

ChatFormat detect_chat_format(std::string_view t) {
    if (t.empty() || has(t, "<|im_start|>")) return ChatFormat::ChatMl;
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) return ChatFormat::Llama3;
    if (has(t, "<start_of_turn>")) return ChatFormat::Gemma;
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return ChatFormat::Phi3;
    if (has(t, "[INST]")) return ChatFormat::Llama2;
    throw Error("unsupported chat template (known: chatml, llama3, llama2, gemma, phi3)");
}

const char* chat_format_name(ChatFormat f) {
    switch (f) {
        case ChatFormat::ChatMl: return "chatml";
        case ChatFormat::Llama3: return "llama3";
        case ChatFormat::Llama2: return "llama2";
        case ChatFormat::Gemma: return "gemma";
        case ChatFormat::Phi3: return "phi3";
    }
    return "?";
}

std::string format_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
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
    }
    return out;
}

}  // namespace runtime
