#!/usr/bin/env python3
"""Reference renderings of chat templates by Hugging Face transformers, for testing gguf-run's own
Jinja renderer (issue 18, item 6; the renderer itself is not written yet).

Usage (on a machine with python3 + transformers, e.g. the GPU machine):
    python3 scripts/chat_template_refs.py TOKENIZER_DIR OUT.json TEMPLATE.jinja [TEMPLATE.jinja ...]

TOKENIZER_DIR is any Hugging Face tokenizer directory (../shared/fixtures/hf/tiny-moe works); its special
tokens (bos_token, eos_token) are what the templates see, and OUT.json records them so the C++ test can
pass the same values. Every template is rendered for every conversation below, with and without
add_generation_prompt; a template that raises (raise_exception, e.g. on a system message it does not
allow) is recorded with its error text instead of an output.
"""
import json
import sys

from transformers import AutoTokenizer

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi_turn": [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "And of Italy?"},
    ],
    "whitespace_and_unicode": [
        {"role": "user", "content": "  leading and trailing spaces  \n\nnew lines, tabs\t, \"quotes\", and ünïcödé ✓"},
    ],
    "assistant_last": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi."},
    ],
}


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    tok = AutoTokenizer.from_pretrained(sys.argv[1])
    out = {
        "tokenizer": sys.argv[1],
        "bos_token": tok.bos_token,
        "eos_token": tok.eos_token,
        "templates": {},
    }
    for path in sys.argv[3:]:
        with open(path, encoding="utf-8") as f:
            template = f.read()
        cases = []
        for name, messages in CONVERSATIONS.items():
            for add_generation_prompt in (False, True):
                case = {"conversation": name, "messages": messages, "add_generation_prompt": add_generation_prompt}
                try:
                    case["output"] = tok.apply_chat_template(
                        messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
                    )
                except Exception as e:  # the template's own raise_exception, or a Jinja error
                    case["error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
        out["templates"][path.rsplit("/", 1)[-1]] = {"template": template, "cases": cases}
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(f"{sys.argv[2]}: {len(out['templates'])} templates x {len(CONVERSATIONS) * 2} cases")


if __name__ == "__main__":
    main()
