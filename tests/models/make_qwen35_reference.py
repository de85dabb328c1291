#!/usr/bin/env python3
"""The tiny Qwen3.5-MoE (`qwen35moe`) reference with transformers' own logits and llama.cpp's GGUF.

Run on a machine with torch, transformers 5.x (Qwen3_5MoeForCausalLM) and numpy; nothing is
downloaded. Writes into OUT:

  hf/                    the checkpoint qwen35_tiny.py defines (the same bytes make_qwen35_reference_local.py
                         writes): Qwen3.5-35B-A3B's structure with sizes shrunk, bf16 weights in
                         transformers' layout, a small BPE tokenizer with Qwen3.5's pre-tokenizer
  refs.safetensors       `tokens` int32 [N, T], `logits` f32 [N, T, V]: transformers' forward in f32 from
                         the stored weights, eager attention, each row one prompt from position 0
  refs-steps.safetensors the first row decoded with transformers' cache: a 100-token prompt, then 24
                         tokens one at a time (`logits` for every position)
  refs.json              shapes, tokenizer cases (text -> ids from the tokenizers library), and the
                         self-checks: loaded parameters equal the stored ones, transformers vs the numpy
                         port (qwen35_tiny.forward), prompt vs step-by-step
  tiny-qwen35-f32.gguf, tiny-qwen35-bf16.gguf
                         llama.cpp's convert_hf_to_gguf.py on hf/ (through convert_reference_qwen35.py,
                         which names the pre-tokenizer `qwen35`: the tiny vocabulary's hash is unknown)

Usage: python3 make_qwen35_reference.py --out OUT [--llama-cpp DIR]
Logits are written first, then llama.cpp's conversion, then the self-checks (the cached steps last:
transformers' torch fallbacks for the delta rule are slow without flash-linear-attention); each
result goes into refs.json as it comes, and a failing step is recorded, not fatal.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qwen35_tiny as tiny  # noqa: E402
from make_qwen35_reference_local import save_refs  # noqa: E402

STEPS = 24  # cached decode steps after the prompt (transformers' torch fallbacks are slow)

TOKENIZER_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing   ",
    "line one\nline two\r\n\n\ttabbed",
    "I've been 'told he's there, 'RE you sure?",
    "numbers 1 12 123 3.14159",
    "def f(x):\n    return x * 2\n",
    "Unicode: café naïve 日本語 résumé",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
]


def load_model(hf_dir, notes):
    import torch
    import transformers
    notes["transformers"] = transformers.__version__
    notes["torch"] = torch.__version__
    from transformers import Qwen3_5MoeForCausalLM
    try:
        model = Qwen3_5MoeForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager")
        notes["loaded_with"] = "from_pretrained"
    except Exception as e:  # noqa: BLE001 - recorded, then the explicit route
        notes["from_pretrained_error"] = repr(e)
        from transformers import AutoConfig
        config = AutoConfig.from_pretrained(hf_dir)
        config._attn_implementation = "eager"
        model = Qwen3_5MoeForCausalLM(config).to(torch.float32)
        weights = tiny.make_weights()
        missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
        notes["loaded_with"] = "load_state_dict"
        notes["missing"] = list(missing)
        notes["unexpected"] = list(unexpected)
    model.eval()
    return model


def check_parameters(model, notes):
    weights = tiny.make_weights()
    params = dict(model.named_parameters())
    worst, missing = 0.0, []
    for name, value in weights.items():
        p = params.get(name)
        if p is None:
            missing.append(name)
            continue
        worst = max(worst, float(np.max(np.abs(p.detach().float().cpu().numpy().reshape(value.shape) - value))))
    notes["parameters_max_abs_diff"] = worst
    notes["parameters_not_found"] = missing
    notes["parameters_unused"] = sorted(set(params) - set(weights))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    hf_dir = os.path.join(args.out, "hf")
    tiny.write_checkpoint(hf_dir, tiny.make_weights())
    notes = {"made": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}

    import torch
    torch.manual_seed(0)
    model = load_model(hf_dir, notes)
    tokens = tiny.test_tokens()
    with torch.no_grad():
        rows = [model(input_ids=torch.from_numpy(r.astype(np.int64))[None]).logits[0].float().numpy() for r in tokens]
    logits = np.stack(rows)
    save_refs(os.path.join(args.out, "refs.safetensors"), tokens, logits)
    print("transformers logits written", logits.shape, flush=True)

    def save_notes():
        notes["shape"] = {"n_seq": tiny.N_SEQ, "n_tok": tiny.SEQ_LEN, "n_vocab": tiny.VOCAB}
        notes["oracle"] = {"logits": "transformers Qwen3_5MoeForCausalLM, f32, eager attention"}
        with open(os.path.join(args.out, "refs.json"), "w") as f:
            json.dump(notes, f, indent=2)

    def record(name, fn):
        try:
            notes[name] = fn()
        except Exception:  # noqa: BLE001 - the reference is kept, the failure recorded
            notes[name] = "failed: " + traceback.format_exc()
        print(name, notes[name] if not isinstance(notes[name], str) else notes[name][:2000], flush=True)
        save_notes()

    # the quick parts first: without flash-linear-attention and causal_conv1d, transformers' torch
    # fallbacks make the cached steps slow (the first device run was stopped there)
    def convert():
        if not args.llama_cpp:
            return "no --llama-cpp"
        wrapper = os.path.join(HERE, "convert_reference_qwen35.py")
        codes = {}
        for outtype in ("f32", "bf16"):
            dst = os.path.join(args.out, f"tiny-qwen35-{outtype}.gguf")
            r = subprocess.run([sys.executable, wrapper, args.llama_cpp, "--", hf_dir, "--outfile", dst,
                                "--outtype", outtype], capture_output=True, text=True)
            print(f"convert {outtype}: exit {r.returncode}\n{r.stderr[-3000:]}", flush=True)
            codes[outtype] = r.returncode
        return codes

    record("llama_cpp_convert", convert)

    def tokenizer_cases():
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
        return [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in TOKENIZER_TEXTS]

    record("tokenizer_cases", tokenizer_cases)
    record("parameters", lambda: (check_parameters(model, notes), "see parameters_*")[1])

    def numpy_port():
        w = tiny.weights64(tiny.make_weights())
        port = np.stack([tiny.forward(w, r, tiny.State()) for r in tokens])
        return {"max_abs_diff": float(np.max(np.abs(port - logits))),
                "same_argmax": int(np.sum(port.argmax(-1) == logits.argmax(-1))),
                "positions": int(logits.shape[0] * logits.shape[1])}

    record("transformers_vs_numpy_port", numpy_port)

    def steps():
        # the first row: a 100-token prompt, then STEPS tokens one at a time through the cache
        from transformers import DynamicCache
        ids = torch.from_numpy(tokens[0][:100 + STEPS].astype(np.int64))[None]
        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            res = model(input_ids=ids[:, :100], past_key_values=cache, use_cache=True)
            parts = [res.logits[0].float().numpy()]
            for t in range(100, ids.shape[1]):
                res = model(input_ids=ids[:, t:t + 1], past_key_values=res.past_key_values, use_cache=True)
                parts.append(res.logits[0].float().numpy())
        out = np.concatenate(parts)[None]
        save_refs(os.path.join(args.out, "refs-steps.safetensors"), tokens[:1, :100 + STEPS], out)
        return float(np.max(np.abs(out[0] - logits[0, :100 + STEPS])))

    record("prompt_vs_steps_max_abs_diff", steps)


if __name__ == "__main__":
    main()
