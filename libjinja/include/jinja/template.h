// A Jinja2 template interpreter for chat templates (tokenizer.chat_template). It implements the
// language as Hugging Face transformers runs it in apply_chat_template: trim_blocks and lstrip_blocks
// on, loop controls (break/continue), tojson as Python's json.dumps, raise_exception and strftime_now.
//
// Covered: {{ }}, {% if/elif/else %}, {% for %} (tuple targets, "if" filter, else, loop.*), {% set %}
// (also ns.attr and block form), {% macro %}, {% generation %} (rendered as its body), comments,
// whitespace control (-), Python-like expressions (arithmetic, ~, comparisons, in, and/or/not,
// conditional expressions, slices, list/dict/tuple literals), the string and dict methods and the
// filters and tests chat templates use (docs/chat.md lists them). Anything else is a jinja::Error
// naming the line, never a silent difference.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "jinja/value.h"

namespace jinja {

// A syntax error, an undefined operation, or a template's own raise_exception(message) (then what()
// is exactly the message, as Python's TemplateError would print it).
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct RenderOptions {
    // strftime_now's clock; the current local time when empty. Tests pin it.
    std::function<std::tm()> now;
};

class Template {
public:
    // Parses the whole template; syntax errors throw Error with the line number.
    explicit Template(std::string_view source);
    ~Template();
    Template(Template&&) noexcept;
    Template& operator=(Template&&) noexcept;

    // `context` is an object of the template's variables (messages, add_generation_prompt, bos_token...).
    std::string render(const Value& context, const RenderOptions& options = {}) const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace jinja
