// The prompt of a chat turn: the model's own Jinja chat template (tokenizer.chat_template, rendered by
// libjinja as transformers' apply_chat_template would), a template given on the command line, or one
// of the five built-in formats by name.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jinja/template.h"
#include "runtime/chat_template.h"
#include "runtime/tokenizer.h"

namespace gguf_run {

class ChatPrompt {
public:
    // `option` is --chat-template (a built-in name, or Jinja source when it holds "{%" or "{{"), `file`
    // --chat-template-file. Called before the model is loaded, so that an unknown name, an unreadable
    // file or a template that does not parse fails at once, naming where it came from.
    static ChatPrompt from_options(const std::string& option, const std::string& file);
    // With neither option the model's template is used (ChatML when it has none); the tokenizer gives
    // bos_token and eos_token.
    void bind(const std::string& model_template, const runtime::Tokenizer& tokenizer);
    // --chat-template-kwargs: a JSON object whose keys become template variables (enable_thinking...).
    // Malformed JSON or anything but an object is a UsageError.
    void set_kwargs(const std::string& json);
    // -rea on|off: `enable_thinking` unless --chat-template-kwargs already set it (the explicit JSON wins).
    void set_default_kwarg(const std::string& key, bool value);

    // The conversation as prompt text ending with the opening of the assistant's turn. The
    // template's BOS, when the tokenizer adds one itself, is left out so that it is not doubled.
    // A template's raise_exception is a runtime::Error "chat template: MESSAGE".
    std::string render(const std::vector<runtime::ChatMessage>& messages) const;

    // What of a generated reply goes back into the conversation: all of it, except under gpt-oss's
    // Harmony format, where it is the final channel's message (its template drops the analysis).
    std::string reply_content(const std::string& reply) const;

    // "the model's Jinja template", "chatml (--chat-template)", ...
    const std::string& description() const { return description_; }

private:
    std::shared_ptr<jinja::Template> jinja_;  // else the built-in format
    runtime::ChatFormat format_ = runtime::ChatFormat::ChatMl;
    std::string bos_text_, eos_text_, description_;
    bool strip_bos_ = false;
    bool harmony_ = false;  // the template writes Harmony's channels
    jinja::Value kwargs_;  // an object, or undefined
};

}  // namespace gguf_run
