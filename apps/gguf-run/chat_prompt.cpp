#include "chat_prompt.h"


#include <nlohmann/json.hpp>

#include "appcommon/cli.h"
#include "appcommon/text.h"
#include "runtime/error.h"

namespace gguf_run {

namespace {

// gpt-oss's template, recognised by Harmony's channel marker as llama.cpp recognises it
bool writes_harmony(const std::string& source) { return source.find("<|channel|>") != std::string::npos; }

runtime::ChatFormat format_from_name(const std::string& name) {
    for (auto f : {runtime::ChatFormat::ChatMl, runtime::ChatFormat::Llama3, runtime::ChatFormat::Llama2,
                   runtime::ChatFormat::Gemma, runtime::ChatFormat::Phi3}) {
        if (name == runtime::chat_format_name(f)) return f;
    }
    throw appcommon::UsageError{"--chat-template: unknown template '" + name +
                                "' (chatml, llama3, llama2, gemma, phi3, or Jinja source; --chat-template-file FILE)"};
}


std::shared_ptr<jinja::Template> compile(const std::string& source, const std::string& origin) {
    try {
        return std::make_shared<jinja::Template>(source);
    } catch (const jinja::Error& e) {
        throw runtime::Error(origin + ": " + e.what());
    }
}

std::string special_text(const runtime::Tokenizer& tok, int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < tok.n_vocab() ? tok.token_text(id) : std::string();
}

}  // namespace

std::string ChatPrompt::reply_content(const std::string& reply) const {
    return harmony_ ? runtime::chat_reply_content(runtime::ChatFormat::Harmony, reply) : reply;
}

ChatPrompt ChatPrompt::from_options(const std::string& option, const std::string& file) {
    if (!option.empty() && !file.empty()) throw appcommon::UsageError{"give --chat-template or --chat-template-file, not both"};
    ChatPrompt p;
    if (!file.empty()) {
        const std::string source = appcommon::read_file(file, "--chat-template-file");
        p.jinja_ = compile(source, "--chat-template-file " + file);
        p.harmony_ = writes_harmony(source);
        p.description_ = "Jinja template from " + file;
    } else if (option.find("{%") != std::string::npos || option.find("{{") != std::string::npos) {
        p.jinja_ = compile(option, "--chat-template");
        p.harmony_ = writes_harmony(option);
        p.description_ = "Jinja template from --chat-template";
    } else if (!option.empty()) {
        p.format_ = format_from_name(option);
        p.description_ = std::string(runtime::chat_format_name(p.format_)) + " (--chat-template)";
    }
    return p;
}

void ChatPrompt::bind(const std::string& model_template, const runtime::Tokenizer& tokenizer) {
    bos_text_ = special_text(tokenizer, tokenizer.bos());
    eos_text_ = special_text(tokenizer, tokenizer.eos());
    strip_bos_ = tokenizer.add_bos() && !bos_text_.empty();
    if (!description_.empty()) return;  // given on the command line
    if (!model_template.empty()) {
        jinja_ = compile(model_template, "the model's tokenizer.chat_template");
        harmony_ = writes_harmony(model_template);
        description_ = "the model's Jinja template (tokenizer.chat_template)";
    } else {
        description_ = "chatml (the model has no tokenizer.chat_template)";
    }
}

void ChatPrompt::set_kwargs(const std::string& json) {
    if (json.empty()) return;
    nlohmann::ordered_json j;
    try {
        j = nlohmann::ordered_json::parse(json);
    } catch (const nlohmann::json::exception& e) {
        throw appcommon::UsageError{"--chat-template-kwargs: not valid JSON: " + std::string(e.what())};
    }
    if (!j.is_object()) throw appcommon::UsageError{"--chat-template-kwargs: expected a JSON object such as {\"enable_thinking\": false}"};
    kwargs_ = jinja::Value::from_json(j);
}

void ChatPrompt::set_default_kwarg(const std::string& key, bool value) {
    if (!kwargs_.is_object()) kwargs_ = jinja::Value::object();
    if (!kwargs_.obj().find(key)) kwargs_.obj().set(key, jinja::Value(value));
}

std::string ChatPrompt::render(const std::vector<runtime::ChatMessage>& messages) const {
    if (!jinja_) return runtime::format_chat(format_, messages, true);
    jinja::Value::Array list;
    for (const auto& m : messages) {
        jinja::Value::Object o;
        o.set("role", jinja::Value(m.role));
        o.set("content", jinja::Value(m.content));
        list.push_back(jinja::Value::object(std::move(o)));
    }
    // what transformers' apply_chat_template passes, tools and documents being None
    jinja::Value::Object ctx;
    ctx.set("messages", jinja::Value::array(std::move(list)));
    ctx.set("add_generation_prompt", jinja::Value(true));
    ctx.set("tools", jinja::Value::none());
    ctx.set("documents", jinja::Value::none());
    ctx.set("bos_token", jinja::Value(bos_text_));
    ctx.set("eos_token", jinja::Value(eos_text_));
    if (kwargs_.is_object()) {
        for (const auto& [k, v] : kwargs_.obj().items) ctx.set(k, v);  // as apply_chat_template's **kwargs
    }
    std::string text;
    try {
        text = jinja_->render(jinja::Value::object(std::move(ctx)));
    } catch (const jinja::Error& e) {
        throw runtime::Error("chat template: " + std::string(e.what()));
    }
    if (strip_bos_ && text.starts_with(bos_text_)) text.erase(0, bos_text_.size());
    return text;
}

}  // namespace gguf_run
