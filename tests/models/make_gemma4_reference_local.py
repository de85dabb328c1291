#!/usr/bin/env python3
"""The tiny Gemma 4 reference made here, without torch or transformers.

Writes OUT (tests/models/gemma4/): hf/ and hf-assistant/ (gemma4_tiny.py's checkpoints),
refs.safetensors and refs.json with the expected outputs of gemma4_numpy.py's float64 port of
transformers' forward pass:

  tokens            I32 [2, T]     two rows from <bos>, T = 40 > 5 x the sliding window (8)
  logits            F32 [2, T, V]  each row from position 0
  logits_bf16       F32 [2, T, V]  the same with the weights llama.cpp's converter stores as bf16
                                   (matrices; not norms, scales, the router) rounded to bf16 first:
                                   what a --outtype bf16 file should give
  assistant_cases   I32 [C, 3]     (target prefix length n, token, draft position)
  assistant_logits  F32 [C, V]     the draft's logits for each case (gemma4_numpy.draft_step)
  assistant_state   F32 [C, H]     its post_projection output (the next step's hidden input)

make_gemma4_reference.py (GPU machine) makes the same checkpoints and, with transformers, the
logits these should equal; it also records how far this port is from transformers.

tokenizer_cases in refs.json (with --node-dir): the ids Hugging Face's tokenizers library (its Rust
core, through the `tokenizers` npm package run by node) gives for hf/tokenizer.json, <bos> added by
its post-processor, special tokens in the text recognised -- what transformers' tokenizer returns.

Usage: python3 make_gemma4_reference_local.py OUT [--node-dir NODE_DIR]
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemma4_numpy  # noqa: E402
import gemma4_tiny  # noqa: E402

ASSISTANT_CASES = [5, 12, 39]


def bf16_round(a):
    """f32 -> bf16 -> f32 with round-to-nearest-even (gguf-py's conversion; no NaNs here)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def stored_as_bf16(name, a):
    """The tensors a bf16 conversion stores as bf16: 2-D and larger weights except the router."""
    return a.ndim >= 2 and "router.proj" not in name


TOKENIZER_TEXTS = ["the quick brown fox", "Hello world!", "hello, the world", "ünïcødé and 数字 42",
                   "  two  spaces ", "line one\nline two\n\n end", "the<eos>x", "brown fox<bos>"]


def encode_with_hf_tokenizers(node_dir, tokenizer_json, texts):
    script = ("const {Tokenizer}=require('tokenizers');const fs=require('fs');(async()=>{"
              "const t=Tokenizer.fromFile(process.argv[1]);const xs=JSON.parse(fs.readFileSync(0,'utf8'));"
              "const o=[];for(const s of xs){const e=await t.encode(s,undefined,{addSpecialTokens:true});"
              "o.push(Array.from(e.getIds()));}process.stdout.write(JSON.stringify(o));})();")
    r = subprocess.run(["node", "-e", script, tokenizer_json], input=json.dumps(texts).encode(),
                       capture_output=True, cwd=node_dir, check=True)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--node-dir", help="directory whose node_modules holds the `tokenizers` package")
    args = ap.parse_args()
    out = args.out
    hf, cfg, tokens = gemma4_tiny.write(out)
    ahf = gemma4_tiny.write_assistant(out, cfg)
    os.remove(os.path.join(out, "tokens.npy"))
    target = gemma4_numpy.Gemma4(cfg, gemma4_tiny.load_safetensors(os.path.join(hf, "model.safetensors")))
    refs = {"tokens": tokens, "logits": np.stack([target.logits(row) for row in tokens])}
    w = gemma4_tiny.load_safetensors(os.path.join(hf, "model.safetensors"))
    rounded = {k: (bf16_round(v) if stored_as_bf16(k, v) else v) for k, v in w.items()}
    refs["logits_bf16"] = np.stack([gemma4_numpy.Gemma4(cfg, rounded).logits(row) for row in tokens])
    with open(os.path.join(ahf, "config.json")) as f:
        acfg = json.load(f)
    aw = gemma4_tiny.load_safetensors(os.path.join(ahf, "model.safetensors"))
    cases, a_logits, a_state = [], [], []
    for n in ASSISTANT_CASES:
        token, pos = int(tokens[0, n]), n
        lg, st = gemma4_numpy.draft_step(target, acfg, aw, tokens[0, :n], token, pos)
        cases.append([n, token, pos])
        a_logits.append(lg)
        a_state.append(st)
    refs["assistant_cases"] = np.array(cases, dtype=np.int32)
    refs["assistant_logits"] = np.stack(a_logits)
    refs["assistant_state"] = np.stack(a_state)
    gemma4_tiny.save_safetensors(os.path.join(out, "refs.safetensors"), refs)
    report = {
        "description": "tiny random Gemma 4 (26B-A4B layout); rows from position 0, starting with <bos>",
        "seed": gemma4_tiny.SEED,
        "oracle": "gemma4_numpy.py: a float64 numpy port of transformers' Gemma4ForCausalLM and "
                  "Gemma4AssistantForCausalLM forward passes (transformers not available here); "
                  "make_gemma4_reference.py checks the port against transformers on the GPU machine",
        "assistant_cases": "rows: [target prefix length n, token, draft position]",
        "logits_abs_max": float(np.abs(refs["logits"]).max()),
    }
    if args.node_dir:
        ids = encode_with_hf_tokenizers(args.node_dir, os.path.abspath(os.path.join(hf, "tokenizer.json")),
                                        TOKENIZER_TEXTS)
        report["tokenizer_cases"] = [{"text": t, "ids": i} for t, i in zip(TOKENIZER_TEXTS, ids)]
        report["tokenizer_oracle"] = "Hugging Face tokenizers (Rust core, npm package `tokenizers`), " \
                                     "add_special_tokens=True"
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
