"""The tiny Qwen3.5-MoE (`qwen35moe`) reference model: its config, weights, tokenizer and a numpy
port of transformers' forward pass (modeling_qwen3_5_moe.py, Qwen3_5MoeForCausalLM).

Shared by make_qwen35_reference_local.py (no torch: writes the checkpoint and the numpy logits) and
make_qwen35_reference.py (GPU machine: the same checkpoint, logits from transformers itself and
llama.cpp's converter). Everything here is deterministic from SEED, so both make the same bytes.

The model keeps Qwen3.5-35B-A3B's structure with the sizes shrunk: the layer types from
full_attention_interval 4 (three Gated DeltaNet layers, then one gated full-attention layer, twice),
more value heads than key heads in the linear layers (so the converter's V-head reordering matters),
a partial rotary factor of 1/4 with mrope sections, 16 routed experts of which 8 are used (the real
top-k) plus a shared expert behind a sigmoid gate, and the 1+w RMSNorms (the gated norm excepted).
"""

import json
import math

import numpy as np

import safetensors_numpy

SEED = 20261129
HIDDEN = 64
LAYERS = 8
FULL_ATTENTION_INTERVAL = 4
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 32
PARTIAL_ROTARY = 0.25           # 8 rotated dimensions per head
MROPE_SECTION = [2, 1, 1]       # sums to the 4 rotated pairs
LIN_K_HEADS = 2
LIN_V_HEADS = 4
LIN_K_DIM = 16
LIN_V_DIM = 16
CONV_KERNEL = 4
EXPERTS = 16
TOP_K = 8
MOE_FF = 32
SHARED_FF = 96
VOCAB = 512
ROPE_THETA = 10000000.0
RMS_EPS = 1e-6
SEQ_LEN = 200                   # crosses three 64-token chunks of the chunked delta rule
N_SEQ = 2

# Qwen3.5's pre-tokenizer split (tokenizer.json of the Qwen3.5 releases; llama.cpp's `qwen35`).
QWEN35_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|"
                  r" ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def layer_types():
    return ["linear_attention" if (i + 1) % FULL_ATTENTION_INTERVAL else "full_attention" for i in range(LAYERS)]


def config_dict():
    """config.json of a Qwen3_5MoeForCausalLM (the text model, as transformers 5 saves it)."""
    return {
        "architectures": ["Qwen3_5MoeForCausalLM"],
        "model_type": "qwen3_5_moe_text",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": VOCAB_SPECIAL_IDS["<|im_end|>"],
        "pad_token_id": VOCAB_SPECIAL_IDS["<|endoftext|>"],
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "layer_types": layer_types(),
        "full_attention_interval": FULL_ATTENTION_INTERVAL,
        "linear_conv_kernel_dim": CONV_KERNEL,
        "linear_key_head_dim": LIN_K_DIM,
        "linear_num_key_heads": LIN_K_HEADS,
        "linear_num_value_heads": LIN_V_HEADS,
        "linear_value_head_dim": LIN_V_DIM,
        "max_position_embeddings": 4096,
        "moe_intermediate_size": MOE_FF,
        "num_attention_heads": HEADS,
        "num_experts": EXPERTS,
        "num_experts_per_tok": TOP_K,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": RMS_EPS,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": ROPE_THETA,
            "partial_rotary_factor": PARTIAL_ROTARY,
            "mrope_section": MROPE_SECTION,
            "mrope_interleaved": True,
        },
        "shared_expert_intermediate_size": SHARED_FF,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": VOCAB,
    }


# ---- bf16 --------------------------------------------------------------------------------------

def to_bf16_bits(a):
    """float32 -> bf16 bits, rounding to nearest even (as torch does)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def bf16_round(a):
    return from_bf16_bits(to_bf16_bits(a))


def make_weights():
    """HF parameter name -> float32 array (values representable in bf16), transformers' layout:
    the routed experts fused per layer as mlp.experts.gate_up_proj [E, 2*ff, H] and down_proj
    [E, H, ff]. Scales keep activations O(1) with a decisive router, decays from fast to slow so
    the recurrent state carries information across chunks."""
    rng = np.random.default_rng(SEED)

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def linear(rows, cols, gain=1.0):
        return normal((rows, cols), gain / math.sqrt(cols))

    w = {}
    w["model.embed_tokens.weight"] = normal((VOCAB, HIDDEN), 1.0)
    w["model.norm.weight"] = normal((HIDDEN,), 0.1)
    w["lm_head.weight"] = linear(VOCAB, HIDDEN, 2.0)
    key_dim, value_dim = LIN_K_HEADS * LIN_K_DIM, LIN_V_HEADS * LIN_V_DIM
    conv_dim = 2 * key_dim + value_dim
    for i, kind in enumerate(layer_types()):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = normal((HIDDEN,), 0.1)
        w[p + "post_attention_layernorm.weight"] = normal((HIDDEN,), 0.1)
        if kind == "linear_attention":
            a = p + "linear_attn."
            w[a + "in_proj_qkv.weight"] = linear(conv_dim, HIDDEN, 1.5)
            w[a + "in_proj_z.weight"] = linear(value_dim, HIDDEN, 1.5)
            w[a + "in_proj_b.weight"] = linear(LIN_V_HEADS, HIDDEN, 1.0)
            w[a + "in_proj_a.weight"] = linear(LIN_V_HEADS, HIDDEN, 1.0)
            w[a + "conv1d.weight"] = normal((conv_dim, 1, CONV_KERNEL), 0.5)
            w[a + "dt_bias"] = normal((LIN_V_HEADS,), 0.5)
            w[a + "A_log"] = np.log(rng.uniform(0.02, 2.0, LIN_V_HEADS)).astype(np.float32)
            w[a + "norm.weight"] = 1.0 + normal((LIN_V_DIM,), 0.1)
            w[a + "out_proj.weight"] = linear(HIDDEN, value_dim, 1.5)
        else:
            s = p + "self_attn."
            w[s + "q_proj.weight"] = linear(2 * HEADS * HEAD_DIM, HIDDEN, 1.5)
            w[s + "k_proj.weight"] = linear(KV_HEADS * HEAD_DIM, HIDDEN, 1.5)
            w[s + "v_proj.weight"] = linear(KV_HEADS * HEAD_DIM, HIDDEN, 1.5)
            w[s + "o_proj.weight"] = linear(HIDDEN, HEADS * HEAD_DIM, 1.5)
            w[s + "q_norm.weight"] = normal((HEAD_DIM,), 0.1)
            w[s + "k_norm.weight"] = normal((HEAD_DIM,), 0.1)
        m = p + "mlp."
        w[m + "gate.weight"] = linear(EXPERTS, HIDDEN, 3.0)
        w[m + "experts.gate_up_proj"] = normal((EXPERTS, 2 * MOE_FF, HIDDEN), 1.5 / math.sqrt(HIDDEN))
        w[m + "experts.down_proj"] = normal((EXPERTS, HIDDEN, MOE_FF), 1.5 / math.sqrt(MOE_FF))
        w[m + "shared_expert.gate_proj.weight"] = linear(SHARED_FF, HIDDEN, 1.5)
        w[m + "shared_expert.up_proj.weight"] = linear(SHARED_FF, HIDDEN, 1.5)
        w[m + "shared_expert.down_proj.weight"] = linear(HIDDEN, SHARED_FF, 1.5)
        w[m + "shared_expert_gate.weight"] = linear(1, HIDDEN, 1.0)
    return {k: bf16_round(v) for k, v in w.items()}


def save_safetensors(path, tensors):
    """bf16 safetensors (the format safetensors' writers produce: header sorted by name)."""
    entries = [(name, "BF16", tensors[name].shape, to_bf16_bits(tensors[name]).tobytes()) for name in sorted(tensors)]
    safetensors_numpy.write(path, entries, {"format": "pt"})


# ---- tokenizer: a small byte-level BPE with Qwen3.5's pre-tokenizer ------------------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


CORPUS = ("The quick brown fox jumps over the lazy dog. def f(x):\n    return x * 2\n"
          "Hello world, hello there! Numbers 1 2 3 and words: the, then, there, these, those.\n"
          "<think> reasoning </think> user assistant system Qwen model tokens\n") * 4


def build_tokenizer_json():
    """tokenizer.json: 256 byte tokens, merges learned greedily on CORPUS, then the specials at the
    end, so ids < VOCAB (the rest of the embedding rows are padding, as in the real model)."""
    enc = bytes_to_unicode()
    vocab = {enc[b]: i for i, b in enumerate(sorted(enc))}
    words = {}
    for piece in CORPUS.replace("\n", " \n").split(" "):
        if piece:
            w = tuple(enc[b] for b in (" " + piece).encode())
            words[w] = words.get(w, 0) + 1
    merges = []
    n_merges = VOCAB - 256 - len(SPECIALS) - 40
    while len(merges) < n_merges:
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        (a, b), count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if count < 2:
            break
        merges.append(a + " " + b)
        vocab[a + b] = len(vocab)
        new_words = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + c
        words = new_words
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab), "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
        vocab[s] = len(vocab)
    assert len(vocab) <= VOCAB
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN35_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def _special_ids():
    tok = build_tokenizer_json()
    return {t["content"]: t["id"] for t in tok["added_tokens"]}


VOCAB_SPECIAL_IDS = _special_ids()

CHAT_TEMPLATE = ("{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
                 "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
                 "{%- endif %}")


def tokenizer_config():
    return {"add_bos_token": False, "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>", "model_max_length": 4096, "tokenizer_class": "Qwen2Tokenizer",
            "chat_template": CHAT_TEMPLATE, "errors": "replace", "unk_token": None}


def write_checkpoint(hf_dir, weights):
    import os
    os.makedirs(hf_dir, exist_ok=True)
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(config_dict(), f, indent=2)
    with open(os.path.join(hf_dir, "tokenizer.json"), "w") as f:
        json.dump(build_tokenizer_json(), f, ensure_ascii=False)
    with open(os.path.join(hf_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)
    with open(os.path.join(hf_dir, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [VOCAB_SPECIAL_IDS["<|im_end|>"], VOCAB_SPECIAL_IDS["<|endoftext|>"]],
                   "pad_token_id": VOCAB_SPECIAL_IDS["<|endoftext|>"]}, f, indent=2)
    save_safetensors(os.path.join(hf_dir, "model.safetensors"), weights)


def test_tokens():
    """N_SEQ rows of SEQ_LEN token ids (random over the whole vocabulary, specials included)."""
    rng = np.random.default_rng(SEED + 1)
    return rng.integers(0, VOCAB, size=(N_SEQ, SEQ_LEN)).astype(np.int32)


# ---- numpy port of transformers' forward (float64) -----------------------------------------------

def rms_norm(x, w, eps=RMS_EPS, one_plus=True):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * ((1.0 + w) if one_plus else w)


def silu(x):
    return x / (1.0 + np.exp(-x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def l2norm(x, eps=1e-6):
    return x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + eps)


def delta_rule_recurrent(q, k, v, g, beta, state):
    """torch_recurrent_gated_delta_rule (q, k already l2-normalised and q scaled). q, k: [T, H, dk],
    v: [T, H, dv], g, beta: [T, H], state: [H, dk, dv] (updated copy returned)."""
    S = state.copy()
    out = np.zeros_like(v)
    for t in range(q.shape[0]):
        S = S * np.exp(g[t])[:, None, None]
        kv_mem = np.einsum("hkv,hk->hv", S, k[t])
        delta = (v[t] - kv_mem) * beta[t][:, None]
        S = S + np.einsum("hk,hv->hkv", k[t], delta)
        out[t] = np.einsum("hkv,hk->hv", S, q[t])
    return out, S


def delta_rule_chunked(q, k, v, g, beta, state, chunk=64):
    """torch_chunk_gated_delta_rule's algorithm (the UT transform per chunk of 64), same arguments."""
    T, H, dk = q.shape
    dv = v.shape[-1]
    pad = (chunk - T % chunk) % chunk
    P = lambda x: np.concatenate([x, np.zeros((pad,) + x.shape[1:])], axis=0)
    q, k, v, g, beta = P(q), P(k), P(v), P(g), P(beta)
    n = (T + pad) // chunk
    # [H, n, C, ...]
    r = lambda x: np.moveaxis(x, 1, 0).reshape(H, n, chunk, *x.shape[2:])
    q, k, v, g, beta = r(q), r(k), r(v), r(g), r(beta)
    v_beta = v * beta[..., None]
    k_beta = k * beta[..., None]
    cum = np.cumsum(g, axis=-1)
    upper = np.triu(np.ones((chunk, chunk), dtype=bool), 1)
    pair = cum[..., :, None] - cum[..., None, :]
    pair = np.where(upper, -np.inf, pair)
    decay = np.exp(pair)
    ut = (k_beta @ np.swapaxes(k, -1, -2)) * decay
    intra = (q @ np.swapaxes(k, -1, -2)) * decay
    # unit lower-triangular solve (ut's diagonal is replaced by ones, its strict lower part kept)
    L = np.tril(ut, -1) + np.eye(chunk)
    new_values = np.linalg.solve(L, v_beta)
    k_cumdecay = np.linalg.solve(L, k_beta * np.exp(cum)[..., None])
    qd = q * np.exp(cum)[..., None]
    kd = k * np.exp(cum[..., -1:] - cum)[..., None]
    chunk_decay = np.exp(cum[..., -1])
    S = state.copy()
    out = np.zeros((H, n, chunk, dv))
    for i in range(n):
        v_new = new_values[:, i] - k_cumdecay[:, i] @ S
        out[:, i] = qd[:, i] @ S + intra[:, i] @ v_new
        S = S * chunk_decay[:, i][:, None, None] + np.swapaxes(kd[:, i], -1, -2) @ v_new
    out = np.moveaxis(out.reshape(H, n * chunk, dv), 0, 1)[:T]
    return out, S


class State:
    """What a cache holds for one sequence: per linear layer the last K-1 conv inputs and the delta
    state, per full layer the keys and values so far."""

    def __init__(self):
        self.conv = {}
        self.ssm = {}
        self.k = {}
        self.v = {}
        self.pos = 0


def linear_attention(w, p, x, st, il, chunked):
    T = x.shape[0]
    key_dim = LIN_K_HEADS * LIN_K_DIM
    mixed = x @ w[p + "in_proj_qkv.weight"].T
    z = (x @ w[p + "in_proj_z.weight"].T).reshape(T, LIN_V_HEADS, LIN_V_DIM)
    b = x @ w[p + "in_proj_b.weight"].T
    a = x @ w[p + "in_proj_a.weight"].T
    conv_w = w[p + "conv1d.weight"][:, 0, :]  # [C, K]
    prev = st.conv.get(il, np.zeros((CONV_KERNEL - 1, mixed.shape[1])))
    full = np.concatenate([prev, mixed], axis=0)
    st.conv[il] = full[-(CONV_KERNEL - 1):]
    conv = np.stack([np.sum(full[t:t + CONV_KERNEL] * conv_w.T, axis=0) for t in range(T)])
    conv = silu(conv)
    q = conv[:, :key_dim].reshape(T, LIN_K_HEADS, LIN_K_DIM)
    k = conv[:, key_dim:2 * key_dim].reshape(T, LIN_K_HEADS, LIN_K_DIM)
    v = conv[:, 2 * key_dim:].reshape(T, LIN_V_HEADS, LIN_V_DIM)
    beta = sigmoid(b)
    g = -np.exp(w[p + "A_log"]) * softplus(a + w[p + "dt_bias"])
    rep = LIN_V_HEADS // LIN_K_HEADS
    q = np.repeat(q, rep, axis=1)
    k = np.repeat(k, rep, axis=1)
    q = l2norm(q) / math.sqrt(LIN_K_DIM)
    k = l2norm(k)
    state = st.ssm.get(il, np.zeros((LIN_V_HEADS, LIN_K_DIM, LIN_V_DIM)))
    core, st.ssm[il] = (delta_rule_chunked if chunked else delta_rule_recurrent)(q, k, v, g, beta, state)
    o = rms_norm(core, w[p + "norm.weight"], one_plus=False) * silu(z)
    return o.reshape(T, -1) @ w[p + "out_proj.weight"].T


def rope_cos_sin(positions):
    n_rot = int(HEAD_DIM * PARTIAL_ROTARY)
    inv = 1.0 / (ROPE_THETA ** (np.arange(0, n_rot, 2, dtype=np.float64) / n_rot))
    # mrope: the text positions are the same on all three axes, so every section sees `positions`
    freqs = positions[:, None] * inv[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb), np.sin(emb), n_rot


def apply_rope(x, cos, sin, n_rot):
    rot, rest = x[..., :n_rot], x[..., n_rot:]
    half = n_rot // 2
    rotated = np.concatenate([-rot[..., half:], rot[..., :half]], axis=-1)
    return np.concatenate([rot * cos[:, None, :] + rotated * sin[:, None, :], rest], axis=-1)


def full_attention(w, p, x, st, il):
    T = x.shape[0]
    qg = (x @ w[p + "q_proj.weight"].T).reshape(T, HEADS, 2 * HEAD_DIM)
    q, gate = qg[..., :HEAD_DIM], qg[..., HEAD_DIM:].reshape(T, -1)
    q = rms_norm(q, w[p + "q_norm.weight"])
    k = rms_norm((x @ w[p + "k_proj.weight"].T).reshape(T, KV_HEADS, HEAD_DIM), w[p + "k_norm.weight"])
    v = (x @ w[p + "v_proj.weight"].T).reshape(T, KV_HEADS, HEAD_DIM)
    positions = np.arange(st.pos, st.pos + T, dtype=np.float64)
    cos, sin, n_rot = rope_cos_sin(positions)
    q = apply_rope(q, cos, sin, n_rot)
    k = apply_rope(k, cos, sin, n_rot)
    K = np.concatenate([st.k[il], k]) if il in st.k else k
    V = np.concatenate([st.v[il], v]) if il in st.v else v
    st.k[il], st.v[il] = K, V
    n_kv = K.shape[0]
    out = np.zeros((T, HEADS, HEAD_DIM))
    group = HEADS // KV_HEADS
    for h in range(HEADS):
        s = (q[:, h] @ K[:, h // group].T) / math.sqrt(HEAD_DIM)
        causal = np.arange(n_kv)[None, :] > (st.pos + np.arange(T))[:, None]
        s = np.where(causal, -np.inf, s)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        out[:, h] = s @ V[:, h // group]
    out = out.reshape(T, -1) * sigmoid(gate)
    return out @ w[p + "o_proj.weight"].T


def moe(w, p, x):
    logits = x @ w[p + "gate.weight"].T
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :TOP_K]
    out = np.zeros_like(x)
    gu, down = w[p + "experts.gate_up_proj"], w[p + "experts.down_proj"]
    for t in range(x.shape[0]):
        weights = probs[t, top[t]] / probs[t, top[t]].sum()
        for e, wt in zip(top[t], weights):
            h = gu[e] @ x[t]
            out[t] += wt * (down[e] @ (silu(h[:MOE_FF]) * h[MOE_FF:]))
    shared = (silu(x @ w[p + "shared_expert.gate_proj.weight"].T) * (x @ w[p + "shared_expert.up_proj.weight"].T)) \
        @ w[p + "shared_expert.down_proj.weight"].T
    return out + sigmoid(x @ w[p + "shared_expert_gate.weight"].T) * shared


def forward(w, tokens, st, chunked=True):
    """Logits [T, V] of `tokens` continuing the sequence in `st` (updated)."""
    x = w["model.embed_tokens.weight"][tokens].astype(np.float64)
    for il, kind in enumerate(layer_types()):
        p = f"model.layers.{il}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        if kind == "linear_attention":
            x = x + linear_attention(w, p + "linear_attn.", h, st, il, chunked)
        else:
            x = x + full_attention(w, p + "self_attn.", h, st, il)
        x = x + moe(w, p + "mlp.", rms_norm(x, w[p + "post_attention_layernorm.weight"]))
    st.pos += len(tokens)
    return rms_norm(x, w["model.norm.weight"]) @ w["lm_head.weight"].T.astype(np.float64)


def weights64(w):
    return {k: v.astype(np.float64) for k, v in w.items()}
