#!/usr/bin/env python3
"""The tiny random-weight Gemma 4 (26B-A4B layout) checkpoint, made with numpy alone.

Both make_gemma4_reference.py (transformers, on the GPU machine) and
make_gemma4_reference_local.py (the numpy port, here) start from the checkpoint this
module writes, so the two references are of the very same weights.

The config is google/gemma-4-26B-A4B's text config with sizes shrunk and everything
else kept: five sliding-window layers then one full-attention layer, full layers with
their own head size and KV-head count and no v_proj (attention_k_eq_v: V is the raw K
projection), proportional RoPE (partial 0.25, theta 1e6) on full layers and default
RoPE (theta 1e4) on sliding ones, a dense MLP beside 16 routed experts of which 8 are
used (the real top-k), router scale and per-expert scale, layer scalars, final logit
softcapping 30, tied embeddings, no per-layer embeddings, no KV sharing. The sliding
window is shrunk to 8 so that the reference sequences cross it several times.

Weights are drawn larger than an initializer would (std 0.1-0.3 instead of 0.02) so
that every part of the forward pass moves the logits; norms, scales and the layer
scalars are drawn around 1 so that a wrong (1 + w) or a missed scale shows.

The tokenizer is a small SentencePiece-style BPE in tokenizer.json form (metaspace
`▁`, byte fallback tokens <0x00>..<0xFF>, <pad> <eos> <bos> <unk> at Gemma's ids
0..3), since the real 262k vocabulary cannot be obtained offline.

Usage: python3 gemma4_tiny.py OUT_DIR   (writes OUT_DIR/hf/)
"""

import json
import os
import sys

import numpy as np

import safetensors_numpy

SEED = 20261129
HIDDEN = 64
INTERMEDIATE = 96        # the dense MLP beside the experts
MOE_INTERMEDIATE = 32
LAYERS = 6               # 5 sliding + 1 full, as each group of six in the real model
HEADS = 4
KV_HEADS = 2             # sliding layers
GLOBAL_KV_HEADS = 1      # full layers
HEAD_DIM = 16            # sliding layers
GLOBAL_HEAD_DIM = 32     # full layers
EXPERTS = 16
TOP_K = 8
WINDOW = 8
SEQ_LEN = 40

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# merges in rank order; each result joins the vocabulary after the single characters
MERGES = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("i", "n"), ("▁", "a"), ("e", "r"), ("o", "n"), ("▁", "s"),
          ("r", "e"), ("a", "n"), ("▁", "w"), ("o", "r"), ("▁", "o"), ("▁", "b"), ("e", "n"), ("i", "s"),
          ("▁", "c"), ("l", "l"), ("▁", "f"), ("o", "u"), ("i", "t"), ("▁", "d"), ("▁", "h"), ("a", "t"),
          ("▁w", "or"), ("▁wor", "l"), ("▁worl", "d"), ("▁", "q"), ("u", "i"), ("▁q", "ui"), ("c", "k"),
          ("▁qui", "ck"), ("▁b", "r"), ("o", "w"), ("▁br", "ow"), ("▁brow", "n"), ("▁f", "o"), ("▁fo", "x")]


def vocabulary():
    vocab = list(SPECIALS)
    vocab += ["<0x%02X>" % b for b in range(256)]
    vocab += ["▁"] + list(LETTERS) + [",", ".", "!", "?"]
    for a, b in MERGES:
        vocab.append(a + b)
    return vocab


def tokenizer_json(vocab):
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(SPECIALS)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(vocab)},
            "merges": [a + " " + b for a, b in MERGES],
        },
    }


def config(vocab_size):
    layer_types = ["sliding_attention"] * 5 + ["full_attention"]
    return {
        "architectures": ["Gemma4ForCausalLM"],
        "model_type": "gemma4_text",
        "vocab_size": vocab_size,
        "vocab_size_per_layer_input": vocab_size,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "moe_intermediate_size": MOE_INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "num_global_key_value_heads": GLOBAL_KV_HEADS,
        "head_dim": HEAD_DIM,
        "global_head_dim": GLOBAL_HEAD_DIM,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": 262144,
        "rms_norm_eps": 1e-6,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
        "tie_word_embeddings": True,
        "rope_parameters": {
            "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"},
        },
        "attention_bias": False,
        "attention_dropout": 0.0,
        "sliding_window": WINDOW,
        "layer_types": layer_types,
        "final_logit_softcapping": 30.0,
        "use_bidirectional_attention": None,
        "hidden_size_per_layer_input": 0,
        "attention_k_eq_v": True,
        "num_kv_shared_layers": 0,
        "enable_moe_block": True,
        "use_double_wide_mlp": False,
        "num_experts": EXPERTS,
        "top_k_experts": TOP_K,
        "torch_dtype": "float32",
    }


def draws(rng):
    """The two ways weights are drawn from rng: normal(shape, std) and around_one(shape, spread)."""
    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def around_one(shape, spread=0.2):
        return (1.0 + rng.uniform(-spread, spread, shape)).astype(np.float32)

    return normal, around_one


def dense_block(w, p, H, F, normal, around_one):
    """The norms around attention and the dense MLP, drawn in this order by target and draft alike."""
    w[p + "post_attention_layernorm.weight"] = around_one((H,))
    w[p + "pre_feedforward_layernorm.weight"] = around_one((H,))
    w[p + "post_feedforward_layernorm.weight"] = around_one((H,))
    w[p + "mlp.gate_proj.weight"] = normal((F, H), 0.2)
    w[p + "mlp.up_proj.weight"] = normal((F, H), 0.2)
    w[p + "mlp.down_proj.weight"] = normal((H, F), 0.15)


def weights(cfg, rng):
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    F, FE, E = cfg["intermediate_size"], cfg["moe_intermediate_size"], cfg["num_experts"]

    normal, around_one = draws(rng)
    w = {"model.embed_tokens.weight": normal((V, H), 0.15), "model.norm.weight": around_one((H,))}
    for il, kind in enumerate(cfg["layer_types"]):
        p = "model.layers.%d." % il
        full = kind == "full_attention"
        hd = cfg["global_head_dim"] if full else cfg["head_dim"]
        nkv = cfg["num_global_key_value_heads"] if full else cfg["num_key_value_heads"]
        nh = cfg["num_attention_heads"]
        w[p + "input_layernorm.weight"] = around_one((H,))
        w[p + "self_attn.q_proj.weight"] = normal((nh * hd, H), 0.25)
        w[p + "self_attn.k_proj.weight"] = normal((nkv * hd, H), 0.25)
        if not (full and cfg["attention_k_eq_v"]):
            w[p + "self_attn.v_proj.weight"] = normal((nkv * hd, H), 0.25)
        w[p + "self_attn.o_proj.weight"] = normal((H, nh * hd), 0.15)
        w[p + "self_attn.q_norm.weight"] = around_one((hd,))
        w[p + "self_attn.k_norm.weight"] = around_one((hd,))
        dense_block(w, p, H, F, normal, around_one)
        w[p + "router.proj.weight"] = normal((E, H), 0.3)
        w[p + "router.scale"] = around_one((H,))
        w[p + "router.per_expert_scale"] = around_one((E,), 0.4)
        w[p + "experts.gate_up_proj"] = normal((E, 2 * FE, H), 0.2)
        w[p + "experts.down_proj"] = normal((E, H, FE), 0.2)
        w[p + "pre_feedforward_layernorm_2.weight"] = around_one((H,))
        w[p + "post_feedforward_layernorm_1.weight"] = around_one((H,))
        w[p + "post_feedforward_layernorm_2.weight"] = around_one((H,))
        w[p + "layer_scalar"] = around_one((1,), 0.3)
    return w


# the draft: narrower than the target (pre/post projections between the two widths)
ASSISTANT_HIDDEN = 48
ASSISTANT_FF = 80


def assistant_config(target_cfg):
    text = dict(target_cfg)
    text.update({
        "architectures": None,
        "hidden_size": ASSISTANT_HIDDEN,
        "intermediate_size": ASSISTANT_FF,
        "num_hidden_layers": 2,
        "layer_types": ["sliding_attention", "full_attention"],
        "num_kv_shared_layers": 2,
        "enable_moe_block": False,
        "num_experts": None,
        "top_k_experts": None,
        "moe_intermediate_size": None,
        "final_logit_softcapping": None,
        # transformers' Gemma4AssistantConfig requires no per-layer-embedding vocabulary
        "vocab_size_per_layer_input": 0,
        "hidden_size_per_layer_input": 0,
    })
    del text["architectures"]
    return {
        "architectures": ["Gemma4AssistantForCausalLM"],
        "model_type": "gemma4_assistant",
        "backbone_hidden_size": target_cfg["hidden_size"],
        "use_ordered_embeddings": False,
        "num_centroids": 2048,
        "centroid_intermediate_top_k": 32,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "text_config": text,
    }


def assistant_weights(acfg, rng):
    t = acfg["text_config"]
    H, B, V, F = t["hidden_size"], acfg["backbone_hidden_size"], t["vocab_size"], t["intermediate_size"]

    normal, around_one = draws(rng)
    w = {"model.embed_tokens.weight": normal((V, H), 0.15), "model.norm.weight": around_one((H,)),
         "pre_projection.weight": normal((H, 2 * B), 0.15), "post_projection.weight": normal((B, H), 0.2)}
    for il, kind in enumerate(t["layer_types"]):
        p = "model.layers.%d." % il
        hd = t["global_head_dim"] if kind == "full_attention" else t["head_dim"]
        nh = t["num_attention_heads"]
        w[p + "input_layernorm.weight"] = around_one((H,))
        w[p + "self_attn.q_proj.weight"] = normal((nh * hd, H), 0.25)
        w[p + "self_attn.q_norm.weight"] = around_one((hd,))
        w[p + "self_attn.o_proj.weight"] = normal((H, nh * hd), 0.15)
        dense_block(w, p, H, F, normal, around_one)
        w[p + "layer_scalar"] = around_one((1,), 0.3)
    return w


def write_assistant(out_dir, cfg):
    """OUT_DIR/hf-assistant/: a tiny gemma4-assistant draft for the tiny target."""
    ahf = os.path.join(out_dir, "hf-assistant")
    os.makedirs(ahf, exist_ok=True)
    acfg = assistant_config(cfg)
    save_safetensors(os.path.join(ahf, "model.safetensors"), assistant_weights(acfg, np.random.default_rng(SEED + 2)))
    with open(os.path.join(ahf, "config.json"), "w") as f:
        json.dump(acfg, f, indent=2)
    hf = os.path.join(out_dir, "hf")
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        with open(os.path.join(hf, name), "rb") as src, open(os.path.join(ahf, name), "wb") as dst:
            dst.write(src.read())
    return ahf


def save_safetensors(path, tensors):
    """F32 (I32 for integer arrays) safetensors, the header sorted by name."""
    entries = []
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        a = np.ascontiguousarray(a, dtype=np.int32 if a.dtype.kind in "iu" else np.float32)
        entries.append((name, "I32" if a.dtype == np.int32 else "F32", a.shape, a.tobytes()))
    safetensors_numpy.write(path, entries, {"format": "pt"})


def load_safetensors(path):
    dtypes = {"F32": np.float32, "I32": np.int32}
    return {name: np.frombuffer(raw, dtype=dtypes[dtype]).reshape(shape)
            for name, (dtype, shape, raw) in safetensors_numpy.read(path).items()}


def token_rows(vocab_size, rng):
    """Reference inputs: a BOS row of random ids (crosses the window five times) and a short one."""
    a = [2] + list(rng.integers(4, vocab_size, SEQ_LEN - 1))
    b = [2] + list(rng.integers(4, vocab_size, SEQ_LEN - 1))
    return np.array([a, b], dtype=np.int32)


def write(out_dir):
    hf = os.path.join(out_dir, "hf")
    os.makedirs(hf, exist_ok=True)
    vocab = vocabulary()
    cfg = config(len(vocab))
    rng = np.random.default_rng(SEED)
    w = weights(cfg, rng)
    save_safetensors(os.path.join(hf, "model.safetensors"), w)
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(hf, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab), f, ensure_ascii=False, indent=1)
    with open(os.path.join(hf, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
                   "pad_token": "<pad>", "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False}, f,
                  indent=2)
    with open(os.path.join(hf, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}, f, indent=2)
    tokens = token_rows(len(vocab), np.random.default_rng(SEED + 1))
    np.save(os.path.join(out_dir, "tokens.npy"), tokens)
    return hf, cfg, tokens


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    write(sys.argv[1])
