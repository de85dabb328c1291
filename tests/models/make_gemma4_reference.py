#!/usr/bin/env python3
"""Transformers' reference outputs for the tiny Gemma 4 checkpoints (run on the GPU machine).

Needs torch, transformers 5.x (with Gemma4ForCausalLM and Gemma4AssistantForCausalLM) and
numpy; nothing is downloaded. Writes into OUT:

  hf/                        the tiny target checkpoint (gemma4_tiny.py: 26B-A4B's text config
                             shrunk, f32 safetensors, a small SentencePiece-style BPE tokenizer)
  hf-assistant/              a tiny gemma4-assistant draft for it (Gemma4AssistantForCausalLM:
                             two Q-only layers, sliding then full, attending to the target's
                             K/V; pre/post projection; no ordered embeddings, as 26B's)
  refs.safetensors           tokens I32 [2,T]; logits F32 [2,T,V] (transformers, f32, eager
                             attention, each row from position 0); logits64 F64->F32 the same
                             run in float64; numpy F32 [2,T,V] (gemma4_numpy.py's port, to check
                             the port itself); assistant_* the draft's function-level cases
  refs.json                  what was made: load report, tokenizer cases, max differences
  tiny-gemma4-{f32,bf16}.gguf           llama.cpp's convert_hf_to_gguf.py on hf/
  tiny-gemma4-assistant-f32.gguf        ... on hf-assistant/

Usage: python3 make_gemma4_reference.py --out OUT --llama-cpp LLAMA_CPP
Each part records its failure in refs.json and the run goes on, so one failing part does not
lose the others.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemma4_numpy  # noqa: E402
import gemma4_tiny  # noqa: E402

# draft cases: target prefix lengths n; the draft is fed token n of row 0 with the target's
# hidden state at n-1, at position n
ASSISTANT_CASES = [5, 12, 39]


def run(cmd, log):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--llama-cpp", required=True)
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    report = {"description": "tiny random Gemma 4 (26B-A4B layout); rows from position 0, starting with <bos>",
              "seed": gemma4_tiny.SEED}
    refs = {}

    hf, cfg, tokens = gemma4_tiny.write(out)
    refs["tokens"] = tokens
    acfg = gemma4_tiny.assistant_config(cfg)
    ahf = gemma4_tiny.write_assistant(out, cfg)

    import torch
    import transformers
    report["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    torch.manual_seed(0)

    model = None
    try:
        model, info = transformers.Gemma4ForCausalLM.from_pretrained(
            hf, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
        model.eval()
        report["load"] = {k: sorted(map(str, v)) for k, v in info.items()}
        with torch.no_grad():
            ids = torch.tensor(tokens, dtype=torch.long)
            refs["logits"] = model(input_ids=ids, use_cache=False).logits.float().numpy()
            # float64: transformers' grouped_mm experts path has no Double kernel; the eager loop does
            try:
                m64 = transformers.Gemma4ForCausalLM.from_pretrained(hf, dtype=torch.float64, attn_implementation="eager",
                                                                     experts_implementation="eager")
            except TypeError:
                m64 = transformers.Gemma4ForCausalLM.from_pretrained(hf, dtype=torch.float64, attn_implementation="eager")
                m64.config._experts_implementation = "eager"
            m64.eval()
            refs["logits64"] = m64(input_ids=ids, use_cache=False).logits.numpy().astype(np.float32)
        report["logits_f32_vs_f64_max_abs_diff"] = float(np.abs(refs["logits"] - refs["logits64"]).max())
    except Exception:
        report["transformers_error"] = traceback.format_exc()
    try:
        with torch.no_grad():
            ids = torch.tensor(tokens, dtype=torch.long)
            # decode step by step through transformers' own cache: the cached path agrees
            cache = transformers.DynamicCache(config=model.config)
            steps = []
            for t in range(tokens.shape[1]):
                o = model(input_ids=ids[:1, t:t + 1], past_key_values=cache, use_cache=True)
                cache = o.past_key_values
                steps.append(o.logits[0, 0].float().numpy())
            report["stepwise_max_abs_diff"] = float(np.abs(np.stack(steps) - refs["logits"][0]).max())
    except Exception:
        report["stepwise_error"] = traceback.format_exc()

    try:
        port = gemma4_numpy.Gemma4(cfg, gemma4_tiny.load_safetensors(os.path.join(hf, "model.safetensors")))
        refs["numpy"] = np.stack([port.logits(row) for row in tokens]).astype(np.float32)
        if "logits64" in refs:
            report["numpy_port_vs_transformers64_max_abs_diff"] = float(np.abs(refs["numpy"] - refs["logits64"]).max())
    except Exception:
        report["numpy_error"] = traceback.format_exc()

    # the draft, as a function: given the target's K/V of its last sliding and last full layer
    # over a prefix, a token and the target's final-norm hidden state, its logits and projected state
    try:
        draft, ainfo = transformers.Gemma4AssistantForCausalLM.from_pretrained(
            ahf, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
        draft.eval()
        report["assistant_load"] = {k: sorted(map(str, v)) for k, v in ainfo.items()}
        a_logits, a_state, a_inputs = [], [], []
        with torch.no_grad():
            for n in ASSISTANT_CASES:
                pos = n
                prefix = torch.tensor(tokens[:1, :n], dtype=torch.long)
                shared = {}
                o = model.model(input_ids=prefix, use_cache=False, shared_kv_states=shared)
                if not shared:
                    o = model.model(input_ids=prefix, use_cache=False, return_shared_kv_states=True)
                    shared = o.shared_kv_states
                h = o.last_hidden_state[:, -1:, :]
                token = int(tokens[0, n])
                emb = model.model.embed_tokens(torch.tensor([[token]]))
                inp = torch.cat([emb, h], dim=-1)
                d = draft(inputs_embeds=inp, position_ids=torch.tensor([[pos]]), shared_kv_states=shared)
                a_logits.append(d.logits[0, 0].float().numpy())
                a_state.append(d.last_hidden_state[0, 0].float().numpy())
                a_inputs.append([n, token, pos])
        refs["assistant_logits"] = np.stack(a_logits)
        refs["assistant_state"] = np.stack(a_state)
        refs["assistant_cases"] = np.array(a_inputs, dtype=np.int32)
        report["assistant_cases"] = "rows: [target prefix length n, token, draft position]; input = " \
                                    "concat(target embed(token) * sqrt(hidden), target final-norm hidden at n-1)"
    except Exception:
        report["assistant_error"] = traceback.format_exc()

    try:
        tok = transformers.AutoTokenizer.from_pretrained(hf)
        cases = []
        for text in ["the quick brown fox", "Hello world!", "hello, the world", "ünïcødé and 数字 42", "  two  spaces"]:
            cases.append({"text": text, "ids": tok(text, add_special_tokens=True)["input_ids"]})
        report["tokenizer_cases"] = cases
    except Exception:
        report["tokenizer_error"] = traceback.format_exc()

    gemma4_tiny.save_safetensors(os.path.join(out, "refs.safetensors"), refs)
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)

    # llama.cpp's converter, through the wrapper that has it read config.json as written (see there)
    conv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "convert_reference_gemma4.py")
    log = os.path.join(out, "convert.log")
    for src, dst, outtype in [(hf, "tiny-gemma4-f32.gguf", "f32"), (hf, "tiny-gemma4-bf16.gguf", "bf16"),
                              (ahf, "tiny-gemma4-assistant-f32.gguf", "f32")]:
        rc = run([sys.executable, conv, args.llama_cpp, "--", src, "--outfile", os.path.join(out, dst),
                  "--outtype", outtype], log)
        report.setdefault("convert_rc", {})[dst] = rc
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_cases")}, indent=1)[:6000])


if __name__ == "__main__":
    main()
