#!/usr/bin/env python3
"""A numpy (float64) port of transformers' Gemma4ForCausalLM forward pass (text only).

Written step for step after modeling_gemma4.py (Gemma4TextModel, Gemma4TextDecoderLayer,
Gemma4TextAttention, Gemma4TextRouter, Gemma4TextExperts, Gemma4TextMLP) and
modeling_rope_utils.py (default and "proportional" RoPE), for the checkpoints this
project's tests use: no per-layer embeddings, no KV sharing, no bidirectional attention.

  embedding    embed_tokens(ids) * sqrt(hidden_size)
  RMSNorm      x * (mean(x^2) + eps)^-0.5 * w   (w itself, not 1 + w); v_norm and the
               router's norm have no weight
  attention    q = q_norm(q_proj x), k = k_norm(k_proj x), v = v_norm(v_proj x, or the raw
               k_proj x where the layer has no v_proj: attention_k_eq_v on full layers);
               RoPE on q and k (rotate_half pairing); scores q.k with scaling 1.0 (no
               1/sqrt(d)); causal, and on sliding layers only keys with
               q_pos - k_pos < sliding_window; softmax; o_proj
  RoPE         sliding: inv_freq = theta^(-2i/head_dim); full ("proportional"):
               inv_freq = theta^(-2i/global_head_dim) for i < partial*global_head_dim/2,
               0 for the rest (those dimensions pass unrotated)
  block        h = x + post_attention_layernorm(attn(input_layernorm(x)))
               m = post_feedforward_layernorm_1(mlp(pre_feedforward_layernorm(h)))
               router: logits = proj(rmsnorm(h) * scale * hidden^-0.5), softmax over all
               experts, top-k, renormalised to sum 1, times per_expert_scale[e]
               e = post_feedforward_layernorm_2(sum_k w_k expert_k(pre_feedforward_layernorm_2(h)))
               expert: down(gelu_tanh(gate) * up), gate/up = the two halves of gate_up_proj
               out = (h + post_feedforward_layernorm(m + e)) * layer_scalar
  output       norm, tied lm_head, then cap * tanh(logits / cap)
"""

import math

import numpy as np


def rms_norm(x, w, eps):
    y = x * np.power(np.mean(x * x, axis=-1, keepdims=True) + eps, -0.5)
    return y if w is None else y * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def inv_freq(cfg, layer_type):
    p = cfg["rope_parameters"][layer_type]
    theta = p["rope_theta"]
    if p.get("rope_type", "default") == "proportional":
        hd = cfg["global_head_dim"]
        angles = int(p.get("partial_rotary_factor", 1.0) * hd // 2)
        rot = 1.0 / theta ** (np.arange(0, 2 * angles, 2, dtype=np.float64) / hd)
        return np.concatenate([rot, np.zeros(hd // 2 - angles)]) / p.get("factor", 1.0)
    hd = cfg["head_dim"]
    return 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)


def rope(x, pos, freqs):
    """x: [T, heads, d]; rotate_half pairing (i with i + d/2)."""
    ang = np.outer(pos, freqs)                      # [T, d/2]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rot * sin


class Gemma4:
    def __init__(self, cfg, weights):
        self.cfg = cfg
        self.w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
        self.eps = cfg["rms_norm_eps"]
        assert not cfg.get("hidden_size_per_layer_input"), "per-layer embeddings are not ported"
        assert not cfg.get("num_kv_shared_layers"), "KV sharing is not ported"

    def attention(self, il, x, pos, cache):
        cfg, w, eps = self.cfg, self.w, self.eps
        p = "model.layers.%d.self_attn." % il
        kind = cfg["layer_types"][il]
        full = kind == "full_attention"
        hd = cfg["global_head_dim"] if full else cfg["head_dim"]
        nh = cfg["num_attention_heads"]
        T = x.shape[0]
        q = (x @ w[p + "q_proj.weight"].T).reshape(T, nh, hd)
        k_raw = (x @ w[p + "k_proj.weight"].T).reshape(T, -1, hd)
        v = (x @ w[p + "v_proj.weight"].T).reshape(T, -1, hd) if p + "v_proj.weight" in w else k_raw
        freqs = inv_freq(cfg, kind)
        q = rope(rms_norm(q, w[p + "q_norm.weight"], eps), pos, freqs)
        k = rope(rms_norm(k_raw, w[p + "k_norm.weight"], eps), pos, freqs)
        v = rms_norm(v, None, eps)
        # the cache holds this layer's keys/values of all earlier positions (decode step by step)
        if cache is not None:
            kp, vp, pp = cache.get(il, (np.zeros((0,) + k.shape[1:]), np.zeros((0,) + v.shape[1:]), np.zeros(0)))
            k, v, kpos = np.concatenate([kp, k]), np.concatenate([vp, v]), np.concatenate([pp, pos])
            cache[il] = (k, v, kpos)
        else:
            kpos = pos
        nkv = k.shape[1]
        group = nh // nkv
        out = np.zeros((T, nh, hd))
        window = cfg["sliding_window"] if not full else None
        for t in range(T):
            allowed = kpos <= pos[t]
            if window is not None:
                allowed &= (pos[t] - kpos) < window
            for h in range(nh):
                s = k[:, h // group, :] @ q[t, h]      # scaling = 1.0
                s = np.where(allowed, s, -np.inf)
                s = np.exp(s - s.max())
                s /= s.sum()
                out[t, h] = s @ v[:, h // group, :]
        return out.reshape(T, nh * hd) @ w[p + "o_proj.weight"].T

    def moe(self, il, h):
        cfg, w, eps = self.cfg, self.w, self.eps
        p = "model.layers.%d." % il
        H, K, FE = cfg["hidden_size"], cfg["top_k_experts"], cfg["moe_intermediate_size"]
        r = rms_norm(h, None, eps) * w[p + "router.scale"] * H ** -0.5
        logits = r @ w[p + "router.proj.weight"].T
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        xe = rms_norm(h, w[p + "pre_feedforward_layernorm_2.weight"], eps)
        out = np.zeros_like(h)
        for t in range(h.shape[0]):
            # torch.topk order (descending); ties do not occur with random weights
            top = np.argsort(-probs[t], kind="stable")[:K]
            wt = probs[t, top] / probs[t, top].sum()
            wt = wt * w[p + "router.per_expert_scale"][top]
            for e, we in zip(top, wt):
                gu = w[p + "experts.gate_up_proj"][e] @ xe[t]
                act = gelu_tanh(gu[:FE]) * gu[FE:]
                out[t] += we * (w[p + "experts.down_proj"][e] @ act)
        return out

    def layer(self, il, x, pos, cache):
        w, eps = self.w, self.eps
        p = "model.layers.%d." % il
        a = self.attention(il, rms_norm(x, w[p + "input_layernorm.weight"], eps), pos, cache)
        h = x + rms_norm(a, w[p + "post_attention_layernorm.weight"], eps)
        m = rms_norm(h, w[p + "pre_feedforward_layernorm.weight"], eps)
        m = (gelu_tanh(m @ w[p + "mlp.gate_proj.weight"].T) * (m @ w[p + "mlp.up_proj.weight"].T)) @ \
            w[p + "mlp.down_proj.weight"].T
        if self.cfg.get("enable_moe_block"):
            m = rms_norm(m, w[p + "post_feedforward_layernorm_1.weight"], eps)
            e = rms_norm(self.moe(il, h), w[p + "post_feedforward_layernorm_2.weight"], eps)
            m = m + e
        out = h + rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps)
        return out * w[p + "layer_scalar"]

    def hidden(self, ids, pos0=0, cache=None):
        """Final-norm hidden states of `ids` at positions pos0... (cache: dict kept across calls)."""
        cfg, w = self.cfg, self.w
        ids = np.asarray(ids)
        pos = np.arange(pos0, pos0 + len(ids), dtype=np.float64)
        x = w["model.embed_tokens.weight"][ids] * math.sqrt(cfg["hidden_size"])
        for il in range(cfg["num_hidden_layers"]):
            x = self.layer(il, x, pos, cache)
        return rms_norm(x, w["model.norm.weight"], self.eps)

    def logits(self, ids, pos0=0, cache=None):
        h = self.hidden(ids, pos0, cache)
        out = h @ self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"]).T
        cap = self.cfg.get("final_logit_softcapping")
        if cap:
            out = cap * np.tanh(out / cap)
        return out


def draft_step(target, acfg, aweights, prefix, token, pos):
    """Gemma4AssistantForCausalLM's forward for one query, as transformers' function: the target runs
    `prefix` (from position 0); the draft gets concat(target embedding(token) * sqrt(target hidden),
    target final-norm hidden of the prefix's last row) at position `pos`, its sliding layers attend
    to the last sliding_window + 1 K/V of the target's last sliding layer (transformers' bidirectional
    sliding mask keeps kv at distance <= sliding_window from the last one, flipped: checked against
    transformers 5.17 on the GPU machine), its full layers to all of the target's last full layer
    (shared_kv_states), bidirectionally (a single query). Returns the
    draft's logits (its tied embedding, no softcapping) and post_projection of its final-norm state."""
    tcfg = target.cfg
    cfg = acfg["text_config"]
    w = {k: np.asarray(v, dtype=np.float64) for k, v in aweights.items()}
    eps = cfg["rms_norm_eps"]
    cache = {}
    h = target.hidden(prefix, 0, cache)[-1]
    kinds = tcfg["layer_types"]
    last = {k: max(i for i, t in enumerate(kinds) if t == k) for k in set(kinds)}
    emb = target.w["model.embed_tokens.weight"][token] * math.sqrt(tcfg["hidden_size"])
    x = np.concatenate([emb, h]) @ w["pre_projection.weight"].T
    for il, kind in enumerate(cfg["layer_types"]):
        p = "model.layers.%d." % il
        full = kind == "full_attention"
        hd = cfg["global_head_dim"] if full else cfg["head_dim"]
        nh = cfg["num_attention_heads"]
        xn = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (xn @ w[p + "self_attn.q_proj.weight"].T).reshape(1, nh, hd)
        q = rope(rms_norm(q, w[p + "self_attn.q_norm.weight"], eps), np.array([float(pos)]), inv_freq(cfg, kind))[0]
        k, v, _ = cache[last[kind]]
        if not full:
            k, v = k[-(cfg["sliding_window"] + 1):], v[-(cfg["sliding_window"] + 1):]
        group = nh // k.shape[1]
        out = np.zeros((nh, hd))
        for hh in range(nh):
            s = k[:, hh // group, :] @ q[hh]
            s = np.exp(s - s.max())
            s /= s.sum()
            out[hh] = s @ v[:, hh // group, :]
        a = out.reshape(-1) @ w[p + "self_attn.o_proj.weight"].T
        x = x + rms_norm(a, w[p + "post_attention_layernorm.weight"], eps)
        m = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps)
        m = (gelu_tanh(m @ w[p + "mlp.gate_proj.weight"].T) * (m @ w[p + "mlp.up_proj.weight"].T)) @ \
            w[p + "mlp.down_proj.weight"].T
        x = (x + rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps)) * w[p + "layer_scalar"]
    hn = rms_norm(x, w["model.norm.weight"], eps)
    return hn @ w["model.embed_tokens.weight"].T, hn @ w["post_projection.weight"].T
