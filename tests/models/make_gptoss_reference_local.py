#!/usr/bin/env python3
"""The tiny gpt-oss reference's expected outputs, made without torch or transformers.

make_gptoss_reference.py makes the checkpoint (hf/) and the expected outputs with transformers on a
machine that has it. Where only hf/ came back, this script makes the same files from it with:

  logits      a port to numpy (float64) of transformers' GptOssForCausalLM forward pass, step for step
              as modeling_gpt_oss.py computes it (eager attention with sinks, sliding-window mask,
              YaRN from _compute_yarn_parameters, top-k router then softmax, the experts' clamped
              SwiGLU), reading the MXFP4 experts as transformers' mxfp4 integration dequantizes them;
  tokenizer   Hugging Face's own tokenizers library (its Rust core, through the `tokenizers` npm
              package run by node) on hf/tokenizer.json: the ids transformers' tokenizer gives;
  chat        the chat template rendered by jinja2 set up as transformers sets it up for
              apply_chat_template (sandboxed environment, trim_blocks, lstrip_blocks, loopcontrols,
              tojson, strftime_now, raise_exception).

refs.json records which oracle made each part. Needs python3-numpy and python3-jinja2 (Debian), and
for the tokenizer cases node with `npm install tokenizers` in NODE_DIR.

refs-ggml.safetensors holds the same rows' logits with one change: the activations that meet the
MXFP4 experts are first rounded to q8_0 (blocks of 32 sharing amax/127, kept as f16), as ggml's and
this project's CPU matmul do. On this deliberately sensitive random model that rounding alone moves
logits by several units, so the runtime's MXFP4 path is checked against these, and its arithmetic
against the exact ones with the experts stored as F32.

Once transformers' own refs.safetensors exists (make_gptoss_reference.py's output), only refs-ggml is
still made here, on transformers' rows: --rows-from REFS reads its tokens, checks this port's exact
logits against transformers' (it stops if they differ by more than 1e-3) and writes OUT_DIR/refs-ggml.safetensors only.

Usage: python3 make_gptoss_reference_local.py HF_DIR OUT_DIR [--node-dir NODE_DIR]
       python3 make_gptoss_reference_local.py HF_DIR OUT_DIR --rows-from REFS.safetensors [--sensitivity 1e-6]
"""

import argparse
import datetime
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_numpy  # noqa: E402
from make_gptoss_reference import CHATS, SEQ_LEN, SEED, TOKENIZER_TEXTS  # noqa: E402

FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float64)


def read_safetensors(path):
    out = {}
    for name, (dtype, shape, raw) in safetensors_numpy.read(path).items():
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        elif dtype == "U8":
            arr = np.frombuffer(raw, dtype=np.uint8)
        elif dtype == "F32":
            arr = np.frombuffer(raw, dtype=np.float32).astype(np.float64)
        elif dtype == "I32":
            arr = np.frombuffer(raw, dtype=np.int32)
        else:
            raise SystemExit(f"error: {path}: tensor {name} has dtype {dtype}")
        out[name] = arr.reshape(shape)
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        dtype = {np.dtype(np.int32): "I32", np.dtype(np.float32): "F32"}[arr.dtype]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def dequant_mxfp4(blocks, scales):
    """transformers' convert_moe_packed_tensors: byte j of a group holds values 2j (low nibble) and
    2j+1 (high nibble), each times 2^(scale - 127); [E, R, G, 16] -> [E, R, G*32]."""
    vals = np.stack([FP4[blocks & 0x0F], FP4[blocks >> 4]], axis=-1).reshape(*blocks.shape[:-1], 32)
    vals = vals * np.ldexp(1.0, scales.astype(np.int64) - 127)[..., None]
    return vals.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32)


def yarn(cfg):
    """_compute_yarn_parameters with gpt-oss's settings (truncate false); frequencies in float32 as
    torch computes them, attention factor get_mscale(factor)."""
    rs = cfg["rope_scaling"]
    base, dim = float(cfg["rope_theta"]), int(cfg["head_dim"])
    factor, orig = float(rs["factor"]), float(rs["original_max_position_embeddings"])
    beta_fast, beta_slow = float(rs.get("beta_fast") or 32), float(rs.get("beta_slow") or 1)

    def corr(rot):
        return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr(beta_fast), corr(beta_slow)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    pos_freqs = np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim))
    extrapolation = (np.float32(1.0) / pos_freqs).astype(np.float32)
    interpolation = (np.float32(1.0) / (np.float32(factor) * pos_freqs)).astype(np.float32)
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - np.float32(low)) / np.float32(high - low), 0, 1)
    keep = (np.float32(1) - ramp).astype(np.float32)
    inv_freq = (interpolation * (1 - keep) + extrapolation * keep).astype(np.float32)
    attention = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    return inv_freq, attention


def q8_0_rounded(x):
    """ggml's quantize_row_q8_0 then dequantization: per 32 values d = amax / 127 (stored as f16),
    q = round(x / d) computed in float32."""
    y = np.empty_like(x)
    for b in range(0, x.shape[-1], 32):
        blk = x[..., b:b + 32].astype(np.float32)
        d = (np.abs(x[..., b:b + 32]).max(axis=-1, keepdims=True) / 127.0).astype(np.float32)
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
        y[..., b:b + 32] = np.rint(blk * inv).astype(np.float64) * d.astype(np.float16).astype(np.float64)
    return y


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def forward(cfg, w, ids, q8_0_experts=False):
    """GptOssForCausalLM.forward for one sequence from position 0: logits [T, V] in float64;
    `q8_0_experts` rounds the experts' inputs as ggml does before its MXFP4 dot products."""
    expert_input = q8_0_rounded if q8_0_experts else (lambda a: a)
    T = len(ids)
    H, nh, nkv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    E, K, eps = cfg["num_local_experts"], cfg["num_experts_per_tok"], cfg["rms_norm_eps"]
    limit, alpha = float(cfg.get("swiglu_limit", 7.0)), 1.702
    inv_freq, attention_scaling = yarn(cfg)
    freqs = np.arange(T, dtype=np.float32)[:, None] * inv_freq[None, :]
    cos = np.cos(freqs.astype(np.float64)) * attention_scaling
    sin = np.sin(freqs.astype(np.float64)) * attention_scaling

    def rope(x):  # [heads, T, hd], halves rotated (_apply_rotary_emb)
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    x = w["model.embed_tokens.weight"][ids]
    for il in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{il}."
        sliding = cfg["layer_types"][il] == "sliding_attention"
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = h @ w[p + "self_attn.q_proj.weight"].T + w[p + "self_attn.q_proj.bias"]
        k = h @ w[p + "self_attn.k_proj.weight"].T + w[p + "self_attn.k_proj.bias"]
        v = h @ w[p + "self_attn.v_proj.weight"].T + w[p + "self_attn.v_proj.bias"]
        q = rope(q.reshape(T, nh, hd).transpose(1, 0, 2))
        k = rope(k.reshape(T, nkv, hd).transpose(1, 0, 2))
        v = v.reshape(T, nkv, hd).transpose(1, 0, 2)
        k = np.repeat(k, nh // nkv, axis=0)  # repeat_kv
        v = np.repeat(v, nh // nkv, axis=0)
        scores = q @ k.transpose(0, 2, 1) * hd ** -0.5
        qi, ki = np.arange(T)[:, None], np.arange(T)[None, :]
        visible = ki <= qi
        if sliding:
            visible &= ki > qi - cfg["sliding_window"]
        scores = np.where(visible[None], scores, -np.inf)
        sinks = np.broadcast_to(w[p + "self_attn.sinks"][:, None, None], (nh, T, 1))
        combined = np.concatenate([scores, sinks], axis=-1)
        combined = combined - combined.max(axis=-1, keepdims=True)
        probs = np.exp(combined)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        attn = (probs[..., :-1] @ v).transpose(1, 0, 2).reshape(T, nh * hd)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T + w[p + "self_attn.o_proj.bias"]

        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        logits = h @ w[p + "mlp.router.weight"].T + w[p + "mlp.router.bias"]
        top = np.argsort(-logits, axis=-1, kind="stable")[:, :K]
        top_vals = np.take_along_axis(logits, top, axis=-1)
        top_w = np.exp(top_vals - top_vals.max(axis=-1, keepdims=True))
        top_w = top_w / top_w.sum(axis=-1, keepdims=True)
        gate_up = dequant_mxfp4(w[p + "mlp.experts.gate_up_proj_blocks"], w[p + "mlp.experts.gate_up_proj_scales"])
        down = dequant_mxfp4(w[p + "mlp.experts.down_proj_blocks"], w[p + "mlp.experts.down_proj_scales"])
        out = np.zeros_like(x)
        for e in range(E):  # the experts hit, in index order, as the CPU loop of GptOssExperts
            rows, slot = np.nonzero(top == e)
            if len(rows) == 0:
                continue
            gu = expert_input(h[rows]) @ gate_up[e].T + w[p + "mlp.experts.gate_up_proj_bias"][e]
            gate, up = gu[:, ::2], gu[:, 1::2]
            gate = np.minimum(gate, limit)
            up = np.clip(up, -limit, limit)
            glu = gate * (1.0 / (1.0 + np.exp(-gate * alpha)))
            o = expert_input((up + 1) * glu) @ down[e].T + w[p + "mlp.experts.down_proj_bias"][e]
            out[rows] += o * top_w[rows, slot][:, None]
        x = x + out
    x = rms_norm(x, w["model.norm.weight"], eps)
    return x @ w["lm_head.weight"].T


def encode_with_hf_tokenizers(node_dir, tokenizer_json, texts):
    script = ("const {Tokenizer}=require('tokenizers');const fs=require('fs');(async()=>{"
              "const t=Tokenizer.fromFile(process.argv[1]);const xs=JSON.parse(fs.readFileSync(0,'utf8'));"
              "const o=[];for(const s of xs){const e=await t.encode(s,undefined,{addSpecialTokens:false});"
              "o.push(Array.from(e.getIds()));}process.stdout.write(JSON.stringify(o));})();")
    r = subprocess.run(["node", "-e", script, tokenizer_json], input=json.dumps(texts).encode(),
                       capture_output=True, cwd=node_dir, check=True)
    return json.loads(r.stdout)


def render_chats(template, special):
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    compiled = env.from_string(template)
    out = []
    for chat in CHATS:
        text = compiled.render(messages=chat["messages"], add_generation_prompt=True, **special, **chat["kwargs"])
        out.append({"messages": chat["messages"], "kwargs": chat["kwargs"], "add_generation_prompt": True,
                    "rendered": text})
    return out


def ggml_rows_for(cfg, weights, refs_path, out_dir):
    """refs-ggml.safetensors on the rows of transformers' refs.safetensors, after checking this port
    against transformers' logits on them."""
    refs = read_safetensors(refs_path)
    tokens, theirs = refs["tokens"].astype(np.int32), refs["logits"]
    exact = np.stack([forward(cfg, weights, r.astype(np.int64)) for r in tokens])
    diff = float(np.abs(exact - theirs).max())
    same = int((exact.argmax(-1) == theirs.argmax(-1)).sum())
    print(f"numpy port vs transformers: max |logit diff| {diff:.3g}, same argmax {same}/{tokens.size}")
    if diff > 1e-3:
        raise SystemExit("error: the numpy port does not reproduce transformers' logits; refs-ggml not written")
    ggml = np.stack([forward(cfg, weights, r.astype(np.int64), True) for r in tokens]).astype(np.float32)
    write_safetensors(os.path.join(out_dir, "refs-ggml.safetensors"), {"tokens": tokens, "logits": ggml})
    print(f"wrote {out_dir}/refs-ggml.safetensors: logits {ggml.shape}")
    return tokens, ggml


def rounding_sensitivity(cfg, weights, tokens, ggml, rel, trials=4):
    """How far the q8_0-rounded logits move when the experts' inputs change by `rel` (relative,
    Gaussian) before rounding: a change of a few float32 ulps, as another summation order gives,
    flips values at a rounding boundary, and this random model amplifies the flips. This is the
    scale to which a float32 implementation can match refs-ggml at all."""
    global q8_0_rounded
    exact_rounding = q8_0_rounded
    rng = np.random.default_rng(SEED)
    worst = np.zeros(tokens.shape)
    try:
        q8_0_rounded = lambda x: exact_rounding(x * (1 + rel * rng.standard_normal(x.shape)))
        for _ in range(trials):
            moved = np.stack([forward(cfg, weights, r.astype(np.int64), True) for r in tokens])
            worst = np.maximum(worst, np.abs(moved - ggml).max(axis=-1))
    finally:
        q8_0_rounded = exact_rounding
    for i, row in enumerate(worst):
        top = np.argsort(-row)[:3]
        print(f"row {i}: inputs moved by {rel:g} (relative) move logits by up to {row.max():.3g} "
              f"(positions {', '.join(f'{p}: {row[p]:.3g}' for p in top)}); {int((row > 0.1).sum())} positions > 0.1")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hf")
    ap.add_argument("out")
    ap.add_argument("--node-dir", help="directory whose node_modules holds the `tokenizers` package")
    ap.add_argument("--rows-from", help="transformers' refs.safetensors: make only refs-ggml, on its rows")
    ap.add_argument("--sensitivity", type=float, metavar="REL",
                    help="with --rows-from: also report how far refs-ggml moves when the experts' inputs move by REL")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.hf, "config.json")) as f:
        cfg = json.load(f)
    weights = read_safetensors(os.path.join(args.hf, "model.safetensors"))
    if args.rows_from:
        tokens, ggml = ggml_rows_for(cfg, weights, args.rows_from, args.out)
        if args.sensitivity:
            rounding_sensitivity(cfg, weights, tokens, ggml, args.sensitivity)
        return
    with open(os.path.join(args.hf, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    n_tokens = len(tok["model"]["vocab"]) + sum(1 for t in tok["added_tokens"] if t["content"] not in tok["model"]["vocab"])

    rng = np.random.default_rng(SEED + 1)
    rows = [rng.integers(0, n_tokens, size=SEQ_LEN), rng.integers(0, n_tokens, size=SEQ_LEN)]
    notes = {"logits": "numpy (float64) port of transformers' GptOssForCausalLM forward (transformers not available)"}
    refs = {"description": "tiny random gpt-oss; each row independent from position 0, no BOS", "seed": SEED,
            "tokenizer": "small byte-level BPE with o200k's pre-tokenizer and gpt-oss's special tokens",
            "notes": notes}
    if args.node_dir:
        script_text = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_gptoss_reference.py"),
                           encoding="utf-8").read()
        encoded = encode_with_hf_tokenizers(args.node_dir, os.path.abspath(os.path.join(args.hf, "tokenizer.json")),
                                            TOKENIZER_TEXTS + [script_text])
        refs["tokenizer_cases"] = [{"text": t, "ids": ids} for t, ids in zip(TOKENIZER_TEXTS, encoded)]
        rows.append(np.array(encoded[-1][:SEQ_LEN]))
        notes["tokenizer_cases"] = "Hugging Face tokenizers (Rust core, npm package `tokenizers`)"
    tokens = np.stack(rows).astype(np.int32)
    logits = np.stack([forward(cfg, weights, r.astype(np.int64)) for r in tokens]).astype(np.float32)
    write_safetensors(os.path.join(args.out, "refs.safetensors"), {"tokens": tokens, "logits": logits})
    ggml = np.stack([forward(cfg, weights, r.astype(np.int64), True) for r in tokens]).astype(np.float32)
    write_safetensors(os.path.join(args.out, "refs-ggml.safetensors"), {"tokens": tokens, "logits": ggml})

    template_path = os.path.join(args.hf, "chat_template.jinja")
    if os.path.exists(template_path):
        with open(os.path.join(args.hf, "tokenizer_config.json")) as f:
            tc = json.load(f)
        special = {k: tc[k] for k in ("bos_token", "eos_token", "pad_token") if isinstance(tc.get(k), str)}
        with open(template_path, encoding="utf-8") as f:
            refs["chat_cases"] = render_chats(f.read(), special)
        refs["chat_date"] = datetime.date.today().strftime("%Y-%m-%d")
        notes["chat_cases"] = "jinja2 set up as transformers' apply_chat_template"
    with open(os.path.join(args.out, "refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, indent=1, ensure_ascii=False)
    print(f"wrote {args.out}: logits {logits.shape}, |logit| max {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main()
