#!/usr/bin/env python3
"""The tiny Qwen3.5-MoE reference made without torch or transformers (needs python3-numpy only).

Writes into OUT_DIR:
  hf/                  the checkpoint (qwen35_tiny.py: config.json of a Qwen3_5MoeForCausalLM, bf16
                       model.safetensors in transformers' layout, a small byte-level BPE tokenizer.json
                       with Qwen3.5's pre-tokenizer, tokenizer_config.json with a ChatML template)
  refs.safetensors     `tokens` int32 [N, T] and `logits` f32 [N, T, V] from a numpy (float64) port of
                       transformers' Qwen3_5MoeForCausalLM forward: each row from position 0 as one
                       prompt, the delta rule chunked (64) as transformers computes prompts
  refs.json            what was made, by which oracle, and the port's self-checks: the chunked and the
                       token-by-token recurrent delta rule agree, a prompt continued token by token
                       equals the whole row

make_qwen35_reference.py makes the same checkpoint on a machine with transformers and takes the
logits from transformers itself; this script's outputs are checked only against this port.

Usage: python3 make_qwen35_reference_local.py OUT_DIR
"""

import datetime
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen35_tiny as tiny  # noqa: E402
import safetensors_numpy  # noqa: E402


def save_refs(path, tokens, logits):
    tensors = [("logits", "F32", logits.astype(np.float32)), ("tokens", "I32", tokens.astype(np.int32))]
    safetensors_numpy.write(path, [(name, dtype, a.shape, np.ascontiguousarray(a).tobytes())
                                   for name, dtype, a in tensors])


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    weights = tiny.make_weights()
    tiny.write_checkpoint(os.path.join(out, "hf"), weights)
    w = tiny.weights64(weights)
    tokens = tiny.test_tokens()
    rows = [tiny.forward(w, row, tiny.State(), chunked=True) for row in tokens]
    logits = np.stack(rows)

    checks = {}
    # the recurrent rule on the first row (one token at a time through the whole model)
    st = tiny.State()
    step = np.stack([tiny.forward(w, tokens[0][t:t + 1], st, chunked=False)[0] for t in range(tiny.SEQ_LEN)])
    checks["token_by_token_vs_prompt_max_abs_diff"] = float(np.max(np.abs(step - logits[0])))
    # a prompt of 100 (two chunks, the second partial), then batches of 7
    st = tiny.State()
    parts = [tiny.forward(w, tokens[1][:100], st)]
    for t in range(100, tiny.SEQ_LEN, 7):
        parts.append(tiny.forward(w, tokens[1][t:t + 7], st))
    checks["prompt_then_batches_max_abs_diff"] = float(np.max(np.abs(np.concatenate(parts) - logits[1])))
    for k, v in checks.items():
        print(f"{k}: {v:.3g}")
        if v > 1e-9:
            raise SystemExit(f"self-check failed: {k} = {v}")

    save_refs(os.path.join(out, "refs.safetensors"), tokens, logits)
    top = logits.argmax(-1)
    refs = {
        "made": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "oracle": {"logits": "numpy float64 port of transformers' Qwen3_5MoeForCausalLM forward (qwen35_tiny.py)"},
        "shape": {"n_seq": tiny.N_SEQ, "n_tok": tiny.SEQ_LEN, "n_vocab": tiny.VOCAB},
        "self_checks": checks,
        "distinct_argmax": int(len(np.unique(top))),
        "logit_std": float(logits.std()),
    }
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(refs, f, indent=2)
    print(json.dumps({k: refs[k] for k in ("distinct_argmax", "logit_std")}))


if __name__ == "__main__":
    main()
