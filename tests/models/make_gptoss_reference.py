#!/usr/bin/env python3
"""Build a tiny random-weight gpt-oss checkpoint and its transformers reference.

Run on a machine with torch, transformers (>= 4.55, with GptOss), safetensors,
tokenizers and numpy; nothing is downloaded.  Writes into OUT:

  hf/                   the checkpoint, laid out as openai/gpt-oss-20b is released:
                        config.json (the real config shrunk), model.safetensors with
                        bf16 dense weights and the experts as MXFP4 (`*_blocks` uint8,
                        `*_scales` uint8 E8M0, `*_bias` bf16), tokenizer.json,
                        tokenizer_config.json, chat template.
  refs.safetensors      `tokens` int32 [N,T] and `logits` f32 [N,T,V]: transformers'
                        forward in f32 arithmetic from the stored weights, eager
                        attention (the one that implements the sinks), each row an
                        independent sequence from position 0.
  refs.json             what was made and how: shapes, the tokenizer cases (text ->
                        ids), chat-template renderings, self-checks.

The model keeps gpt-oss-20b's structure: layer types alternating sliding/full
starting with sliding, attention sinks, biases on q/k/v/o and the router and the
experts, YaRN RoPE with the real parameters, clamped SwiGLU (alpha 1.702, limit 7),
softmax over the top-k router logits; sizes are shrunk and the sliding window is 16
so the 128-token rows cross it several times.

Tokenizer: the real o200k_harmony vocabulary cannot be obtained offline.  Unless
--o200k DIR names a directory holding the real gpt-oss tokenizer.json, the script
trains a small byte-level BPE whose pre-tokenizer is o200k's (the same split regex
and byte-level mapping) and appends gpt-oss's harmony special tokens in their real
order.  Because its vocabulary differs, llama.cpp's converter does not recognise the
pre-tokenizer hash; run it through convert_reference_gptoss.py (next to this file),
which names the pre-tokenizer `gpt-4o` as the real model's would be named and
changes nothing else.  With --o200k the real tokenizer is only used for extra
tokenizer cases in refs.json (its 200k vocabulary would make the model too big).

Usage:
  python3 make_gptoss_reference.py --out OUT [--chat-template FILE] [--o200k DIR]
FILE is gpt-oss's chat template (harmony); by default it is looked for in a
llama.cpp checkout given by --llama-cpp (models/templates/openai-gpt-oss-120b.jinja,
the same template gpt-oss-20b ships).
"""

import argparse
import datetime
import json
import os
import sys

import numpy as np

# Sizes of the tiny model.  Expert matrices need multiples of 32 along their rows
# (MXFP4 blocks); hidden != 2*ffn and head_dim*heads != hidden, as in the real
# model, so no layout mix-up can go unnoticed.
HIDDEN = 64
FFN = 96
LAYERS = 4
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 32
EXPERTS = 8
TOP_K = 4
WINDOW = 16
BPE_VOCAB = 1024
SEQ_LEN = 128
SEED = 20260817

# o200k's pre-tokenizer split pattern (tiktoken o200k_base / gpt-oss tokenizer.json).
O200K_PATTERN = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])

# gpt-oss's special tokens in vocabulary order (real ids 199998..200018).
SPECIALS = (["<|startoftext|>", "<|endoftext|>", "<|reserved_200000|>", "<|reserved_200001|>",
             "<|return|>", "<|constrain|>", "<|reserved_200004|>", "<|channel|>", "<|start|>",
             "<|end|>", "<|message|>", "<|reserved_200009|>", "<|reserved_200010|>",
             "<|reserved_200011|>", "<|call|>"]
            + [f"<|reserved_{i}|>" for i in range(200013, 200018)] + ["<|endofprompt|>"])

TOKENIZER_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing   ",
    "line one\nline two\r\n\n\ttabbed",
    "I've been 'told he's there, 'RE you sure? We'Ve a'lL",
    "numbers 1 12 123 1234 12345 3.14159",
    "CamelCaseWords and snake_case_words HTTPServer",
    "def f(x):\n    return x ** 2  # square\n",
    "Unicode: café naïve 日本語 中文 Ελληνικά русский 🚀🦙",
    "<|start|>user<|message|>What is 2+2?<|end|><|start|>assistant",
    "<|channel|>analysis<|message|>think<|end|><|return|><|call|>",
]

CHATS = [
    {"messages": [{"role": "user", "content": "What is 2+2?"}], "kwargs": {}},
    {"messages": [{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "Name a colour."},
                  {"role": "assistant", "content": "Blue."},
                  {"role": "user", "content": "Another one?"}],
     "kwargs": {"reasoning_effort": "high"}},
    {"messages": [{"role": "developer", "content": "Always rhyme."},
                  {"role": "user", "content": "Hi"}],
     "kwargs": {"reasoning_effort": "low"}},
]


def training_corpus():
    """Text for the small BPE: this file's own source (code, prose, symbols) and the
    tokenizer cases, repeated so every case's pieces are frequent enough to merge."""
    with open(os.path.abspath(__file__), encoding="utf-8") as f:
        text = f.read()
    return [text] + TOKENIZER_TEXTS * 8


def build_tokenizer(chat_template):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(O200K_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>",
                                   eos_token="<|return|>", pad_token="<|endoftext|>")
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


# ---- MXFP4 (OCP microscaling FP4): 32 E2M1 values share one E8M0 scale ----
FP4_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32)


def random_mxfp4(rng, rows_shape, cols, scale_choices):
    """Random blocks [*rows_shape, cols/32, 16] (two E2M1 codes a byte, element 2j in
    the low nibble) and scales [*rows_shape, cols/32] (biased exponents)."""
    blocks = rng.integers(0, 256, size=(*rows_shape, cols // 32, 16), dtype=np.uint8)
    scales = rng.choice(np.array(scale_choices, dtype=np.uint8), size=(*rows_shape, cols // 32))
    return blocks, scales


def dequant_mxfp4(blocks, scales):
    """[*, G, 16] blocks + [*, G] scales -> f32 [*, G*32] (the released checkpoint's
    convention: low nibble first)."""
    lo = FP4_VALUES[blocks & 0x0F]
    hi = FP4_VALUES[blocks >> 4]
    vals = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)
    vals = vals * np.ldexp(np.float32(1.0), scales.astype(np.int32) - 127)[..., None]
    return vals.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32).astype(np.float32)


def config_dict(vocab_size, eos_id, pad_id):
    """openai/gpt-oss-20b's config.json with the sizes shrunk; everything else as released."""
    return {
        "architectures": ["GptOssForCausalLM"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "eos_token_id": eos_id,
        "experts_per_token": TOP_K,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initial_context_length": 4096,
        "initializer_range": 0.02,
        "intermediate_size": FFN,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(LAYERS)],
        "max_position_embeddings": 131072,
        "model_type": "gpt_oss",
        "num_attention_heads": HEADS,
        "num_experts_per_tok": TOP_K,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "num_local_experts": EXPERTS,
        "output_router_logits": False,
        "pad_token_id": pad_id,
        "quantization_config": {
            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"],
            "quant_method": "mxfp4",
        },
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                         "original_max_position_embeddings": 4096, "rope_type": "yarn",
                         "truncate": False},
        "rope_theta": 150000,
        "router_aux_loss_coef": 0.9,
        "sliding_window": WINDOW,
        "swiglu_limit": 7.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def make_weights(rng, vocab_size):
    """Returns (dense f32 arrays to store as bf16, MXFP4 expert arrays).  Scales are
    chosen so activations stay O(1) but the SwiGLU clamp (|x| > 7) is reached, the
    sinks matter against the attention scores and the router is decisive."""
    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    q_dim, kv_dim = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    dense, mx = {}, {}
    dense["model.embed_tokens.weight"] = normal((vocab_size, HIDDEN), 1.0)
    dense["model.norm.weight"] = 1.0 + normal((HIDDEN,), 0.1)
    dense["lm_head.weight"] = normal((vocab_size, HIDDEN), 2.0 / np.sqrt(HIDDEN))
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        dense[p + "input_layernorm.weight"] = 1.0 + normal((HIDDEN,), 0.1)
        dense[p + "post_attention_layernorm.weight"] = 1.0 + normal((HIDDEN,), 0.1)
        for name, rows, cols in (("q_proj", q_dim, HIDDEN), ("k_proj", kv_dim, HIDDEN),
                                 ("v_proj", kv_dim, HIDDEN), ("o_proj", HIDDEN, q_dim)):
            dense[p + f"self_attn.{name}.weight"] = normal((rows, cols), 1.5 / np.sqrt(cols))
            dense[p + f"self_attn.{name}.bias"] = normal((rows,), 0.1)
        dense[p + "self_attn.sinks"] = normal((HEADS,), 1.0)
        dense[p + "mlp.router.weight"] = normal((EXPERTS, HIDDEN), 1.0 / np.sqrt(HIDDEN))
        dense[p + "mlp.router.bias"] = normal((EXPERTS,), 0.2)
        e = p + "mlp.experts."
        mx[e + "gate_up_proj_blocks"], mx[e + "gate_up_proj_scales"] = \
            random_mxfp4(rng, (EXPERTS, 2 * FFN), HIDDEN, [123, 124, 125])
        dense[e + "gate_up_proj_bias"] = normal((EXPERTS, 2 * FFN), 0.5)
        mx[e + "down_proj_blocks"], mx[e + "down_proj_scales"] = \
            random_mxfp4(rng, (EXPERTS, HIDDEN), FFN, [119, 120, 121])
        dense[e + "down_proj_bias"] = normal((EXPERTS, HIDDEN), 0.1)
    return dense, mx


def save_checkpoint(hf_dir, dense, mx):
    import torch
    from safetensors.torch import save_file

    tensors = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in dense.items()}
    tensors.update({k: torch.from_numpy(v) for k, v in mx.items()})
    save_file(tensors, os.path.join(hf_dir, "model.safetensors"), metadata={"format": "pt"})
    # What the model computes with: the stored bf16 values, widened.
    stored = {k: t.float().numpy() for k, t in tensors.items() if t.dtype == torch.bfloat16}
    return stored


def expected_expert_params(stored, mx):
    """Dequantized expert matrices as [E, out, in] from the MXFP4 arrays."""
    out = {}
    for i in range(LAYERS):
        e = f"model.layers.{i}.mlp.experts."
        out[e + "gate_up_proj"] = dequant_mxfp4(mx[e + "gate_up_proj_blocks"], mx[e + "gate_up_proj_scales"])
        out[e + "down_proj"] = dequant_mxfp4(mx[e + "down_proj_blocks"], mx[e + "down_proj_scales"])
    return out


def orient(expected_out_in, param_shape):
    """The model may hold an expert matrix as [E, in, out] (transformers 4.55 layout) or
    [E, out, in]; return the expected values in the parameter's own layout."""
    if tuple(param_shape) == expected_out_in.shape:
        return expected_out_in
    t = np.ascontiguousarray(np.swapaxes(expected_out_in, 1, 2))
    if tuple(param_shape) == t.shape:
        return t
    raise SystemExit(f"error: expert parameter shape {tuple(param_shape)} matches neither layout of "
                     f"{expected_out_in.shape}")


def load_model(hf_dir, stored, mx, notes):
    """transformers' own MXFP4 loader (dequantizing) is the oracle for what the blocks
    mean; the weights it loads are checked against this script's dequantization.  If
    this transformers cannot load MXFP4 on this machine, the model is built from the
    config and given the dequantized weights, and refs.json says so."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    expected = expected_expert_params(stored, mx)
    model = None
    try:
        from transformers import Mxfp4Config
        kwargs = {"quantization_config": Mxfp4Config(dequantize=True), "attn_implementation": "eager"}
        try:
            model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, **kwargs)
        except TypeError:
            model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32, **kwargs)
        notes["loader"] = "transformers from_pretrained with Mxfp4Config(dequantize=True)"
    except Exception as exc:  # recorded, then the fallback below
        notes["loader_error"] = f"{type(exc).__name__}: {exc}"
    if model is None:
        config = AutoConfig.from_pretrained(hf_dir)
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        config._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        state = model.state_dict()
        new_state = {}
        for name, param in state.items():
            if name in expected:
                new_state[name] = torch.from_numpy(orient(expected[name], param.shape))
            elif name in stored:
                new_state[name] = torch.from_numpy(stored[name].reshape(param.shape))
            else:
                raise SystemExit(f"error: no stored weight for parameter {name}")
        model.load_state_dict(new_state, strict=True)
        notes["loader"] = "fallback: model from config, experts dequantized by this script"
    model = model.float().eval()
    model.config._attn_implementation = "eager"

    # Every parameter must equal what was stored (bf16 values; experts dequantized).
    params = dict(model.named_parameters())
    checked = 0
    for name, param in params.items():
        got = param.detach().float().numpy()
        if name in expected:
            want = orient(expected[name], got.shape)
        elif name in stored:
            want = stored[name].reshape(got.shape)
        else:
            raise SystemExit(f"error: model parameter {name} not in the checkpoint")
        if not np.array_equal(got, want):
            if name in expected:
                # transformers' loader defines what the blocks mean: keep its model and
                # record that this script's reading of MXFP4 differs (worth knowing).
                notes.setdefault("expert_dequant_mismatch", []).append(
                    f"{name}: max |d| {float(np.abs(got - want).max())}")
                continue
            raise SystemExit(f"error: parameter {name} differs from the checkpoint "
                             f"(max |d| {np.abs(got - want).max()})")
        checked += 1
    notes["parameters_checked_equal"] = checked
    notes["expert_layout"] = list(params["model.layers.0.mlp.experts.gate_up_proj"].shape)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--chat-template", help="gpt-oss chat template (harmony) file")
    ap.add_argument("--llama-cpp", help="llama.cpp checkout to take the chat template from")
    ap.add_argument("--o200k", help="directory with the real gpt-oss tokenizer.json (optional)")
    args = ap.parse_args()

    import torch
    import transformers
    from safetensors.numpy import save_file as save_np

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    hf_dir = os.path.join(args.out, "hf")
    os.makedirs(hf_dir, exist_ok=True)
    notes = {"transformers": transformers.__version__, "torch": torch.__version__}

    template_path = args.chat_template
    if template_path is None and args.llama_cpp:
        template_path = os.path.join(args.llama_cpp, "models", "templates", "openai-gpt-oss-120b.jinja")
    chat_template = None
    if template_path and os.path.exists(template_path):
        with open(template_path, encoding="utf-8") as f:
            chat_template = f.read()
        notes["chat_template"] = os.path.basename(template_path)
    else:
        notes["chat_template"] = "none found: checkpoint saved without a chat template"
        print("warning: no chat template; pass --chat-template or --llama-cpp", file=sys.stderr)

    tokenizer = build_tokenizer(chat_template)
    tokenizer.save_pretrained(hf_dir)
    n_tokens = len(tokenizer)
    # The released vocabulary is padded past its last token (201088 > 200019); keep a pad.
    vocab_size = (n_tokens + 64) // 64 * 64
    eos_id = tokenizer.convert_tokens_to_ids("<|return|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(config_dict(vocab_size, eos_id, pad_id), f, indent=2)
    with open(os.path.join(hf_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": tokenizer.convert_tokens_to_ids("<|startoftext|>"),
                   "do_sample": True,
                   "eos_token_id": [eos_id, pad_id, tokenizer.convert_tokens_to_ids("<|call|>")],
                   "pad_token_id": pad_id}, f, indent=2)

    dense, mx = make_weights(rng, vocab_size)
    stored = save_checkpoint(hf_dir, dense, mx)
    model = load_model(hf_dir, stored, mx, notes)

    # Rows: two random over the real tokens, one from text through the tokenizer.
    text = open(os.path.abspath(__file__), encoding="utf-8").read()
    text_ids = tokenizer.encode(text, add_special_tokens=False)[:SEQ_LEN]
    if len(text_ids) < SEQ_LEN:
        raise SystemExit("error: tokenizer text too short for a full row")
    rows = [rng.integers(0, n_tokens, size=SEQ_LEN), rng.integers(0, n_tokens, size=SEQ_LEN), text_ids]
    tokens = np.array(rows, dtype=np.int64)
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(tokens), use_cache=False).logits.float().numpy()
    save_np({"tokens": tokens.astype(np.int32), "logits": logits.astype(np.float32)},
            os.path.join(args.out, "refs.safetensors"))
    try:
        # Row 0 again, a prompt of half the row then one token at a time through transformers' KV
        # cache: how far its own two paths agree (a self-check, recorded only).
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(tokens[:1, :SEQ_LEN // 2]), use_cache=True)
            past, step_logits = out.past_key_values, [out.logits[0, -1].float().numpy()]
            for t in range(SEQ_LEN // 2, SEQ_LEN):
                out = model(input_ids=torch.from_numpy(tokens[:1, t:t + 1]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                step_logits.append(out.logits[0, -1].float().numpy())
        cached = np.stack(step_logits)  # positions SEQ_LEN/2 - 1 .. SEQ_LEN - 1
        notes["cache_vs_full_max_abs"] = float(np.abs(cached - logits[0, SEQ_LEN // 2 - 1:]).max())
    except Exception as exc:  # a failed self-check must not cost the reference
        notes["cache_check_error"] = f"{type(exc).__name__}: {exc}"

    cases = [{"text": t, "ids": tokenizer.encode(t, add_special_tokens=False)} for t in TOKENIZER_TEXTS]
    refs = {
        "description": "tiny random gpt-oss; logits from transformers in f32 from the stored weights, "
                       "eager attention, rows independent from position 0, no BOS",
        "shape": {"hidden": HIDDEN, "ffn": FFN, "layers": LAYERS, "heads": HEADS, "kv_heads": KV_HEADS,
                  "head_dim": HEAD_DIM, "experts": EXPERTS, "top_k": TOP_K, "sliding_window": WINDOW,
                  "vocab_size": vocab_size, "tokens_in_tokenizer": n_tokens},
        "seed": SEED,
        "tokenizer": "small byte-level BPE with o200k's pre-tokenizer and gpt-oss's special tokens",
        "tokenizer_cases": cases,
        "notes": notes,
    }
    if chat_template is not None:
        try:
            today = datetime.date.today().strftime("%Y-%m-%d")
            renders = []
            for chat in CHATS:
                text_out = tokenizer.apply_chat_template(chat["messages"], tokenize=False,
                                                         add_generation_prompt=True, **chat["kwargs"])
                renders.append({"messages": chat["messages"], "kwargs": chat["kwargs"],
                                "add_generation_prompt": True, "rendered": text_out})
            refs["chat_cases"] = renders
            refs["chat_date"] = today  # the template prints strftime_now("%Y-%m-%d")
        except Exception as exc:
            notes["chat_error"] = f"{type(exc).__name__}: {exc}"
    if args.o200k:
        try:
            from transformers import AutoTokenizer
            real = AutoTokenizer.from_pretrained(args.o200k)
            refs["o200k_cases"] = [{"text": t, "ids": real.encode(t, add_special_tokens=False)}
                                   for t in TOKENIZER_TEXTS]
        except Exception as exc:
            notes["o200k_error"] = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(args.out, "refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, indent=1, ensure_ascii=False)
    print(json.dumps(notes, indent=1))
    print(f"wrote {args.out}: vocab {vocab_size}, logits {logits.shape}")


if __name__ == "__main__":
    main()
