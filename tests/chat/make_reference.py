#!/usr/bin/env python3
"""Reference renderings of the chat templates in tests/chat/templates for the conversations of
tests/chat/cases.json, as Hugging Face transformers' apply_chat_template renders them.

    python3 tests/chat/make_reference.py [--engine transformers|jinja2] -o reference.json

--engine transformers (the default) uses transformers' own renderer (render_jinja_template, or the
compiled template of older versions), which is what apply_chat_template runs once the tokenizer's
special tokens are known; the special tokens come from cases.json since the models are not downloaded.
--engine jinja2 builds the same Jinja2 environment by hand (trim_blocks, lstrip_blocks, loopcontrols,
tojson, raise_exception, strftime_now) for machines without transformers; the outputs are expected to
be identical, and the file records which engine made it.

strftime_now is pinned to cases.json's "now" so that templates printing today's date render the same
on every run. A template that raises for a conversation (a system role it refuses, roles that do not
alternate) is recorded as {"error": MESSAGE}; the C++ renderer must then fail as well.
"""
import argparse
import datetime
import json
import os
import sys

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))


def fixed_strftime(now):
    return lambda fmt: now.strftime(fmt)


def jinja2_renderer():
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception

    def render(template, messages, tools, add_generation_prompt, variables):
        compiled = env.from_string(template)
        return compiled.render(messages=messages, tools=tools, documents=None,
                               add_generation_prompt=add_generation_prompt, **variables)

    return render, "jinja2 " + jinja2.__version__


def transformers_renderer():
    import transformers
    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError:
        render_jinja_template = None

    def render(template, messages, tools, add_generation_prompt, variables):
        if render_jinja_template is not None:
            rendered, _ = render_jinja_template(conversations=[messages], tools=tools, chat_template=template,
                                                add_generation_prompt=add_generation_prompt, **variables)
            return rendered[0]
        from transformers.utils.chat_template_utils import _compile_jinja_template
        compiled = _compile_jinja_template(template)
        return compiled.render(messages=messages, tools=tools, documents=None,
                               add_generation_prompt=add_generation_prompt, **variables)

    return render, "transformers " + transformers.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["transformers", "jinja2"], default="transformers")
    ap.add_argument("--cases", default=os.path.join(HERE, "cases.json"))
    ap.add_argument("--templates", default=os.path.join(HERE, "templates"))
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    with open(args.cases, encoding="utf-8") as f:
        cases = json.load(f)
    now = datetime.datetime.fromisoformat(cases["now"])
    render, engine = transformers_renderer() if args.engine == "transformers" else jinja2_renderer()

    out = {"engine": engine, "now": cases["now"], "renders": {}}
    for name, special in cases["templates"].items():
        with open(os.path.join(args.templates, name + ".jinja"), encoding="utf-8") as f:
            template = f.read()
        results = {}
        for conv_name, conv in cases["conversations"].items():
            variables = dict(special)
            variables.update(conv.get("kwargs", {}))
            variables["strftime_now"] = fixed_strftime(now)
            try:
                text = render(template, conv["messages"], conv.get("tools"), conv["add_generation_prompt"], variables)
                results[conv_name] = {"text": text}
            except jinja2.exceptions.TemplateError as e:  # raise_exception, or an error in the template
                results[conv_name] = {"error": str(e)}
        out["renders"][name] = results
        print(f"{name}: " + ", ".join(f"{k} {'error' if 'error' in v else len(v['text'])}" for k, v in results.items()),
              file=sys.stderr)

    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
