#!/usr/bin/env python3
"""Benchmark: gguf-inspect on a 16 GB-class GGUF (Qwen3-30B-A3B-like header, 151,936-token vocabulary,
48 MoE layers). Tensor data is a sparse hole, which is fine: the summary must not read it.
Prints the wall time of the summary; usage: bench/inspect_large.py [path/to/gguf-inspect]"""
import os, struct, subprocess, sys, tempfile, time

def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b

def build(path):
    kv = [s('general.architecture') + struct.pack('<I', 8) + s('qwen3moe'),
          s('qwen3moe.block_count') + struct.pack('<II', 4, 48)]
    toks = [f'tok{i}' for i in range(151936)]
    kv.append(s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, len(toks)) + b''.join(map(s, toks)))
    merges = [f'a{i} b{i}' for i in range(151387)]
    kv.append(s('tokenizer.ggml.merges') + struct.pack('<IIQ', 9, 8, len(merges)) + b''.join(map(s, merges)))
    infos, off = [], 0
    def add(name, dims, typ, nbytes):
        nonlocal off
        infos.append(s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<q', d) for d in dims)
                     + struct.pack('<IQ', typ, off))
        off += (nbytes + 31) // 32 * 32
    add('token_embd.weight', [2048, 151936], 8, 2048 * 151936 // 32 * 34)          # q8_0
    for l in range(48):
        for n in ['attn_q', 'attn_k', 'attn_v', 'attn_output']:
            add(f'blk.{l}.{n}.weight', [2048, 2048], 12, 2048 * 2048 // 256 * 144)  # q4_K
        for n in ['ffn_gate_exps', 'ffn_up_exps', 'ffn_down_exps']:
            add(f'blk.{l}.{n}.weight', [2048, 768, 128], 12, 2048 * 768 * 128 // 256 * 144)
        add(f'blk.{l}.attn_norm.weight', [2048], 0, 2048 * 4)
    hdr = b'GGUF' + struct.pack('<IQQ', 3, len(infos), len(kv)) + b''.join(kv) + b''.join(infos)
    hdr += b'\0' * ((32 - len(hdr) % 32) % 32)
    with open(path, 'wb') as f:
        f.write(hdr)
    os.truncate(path, len(hdr) + off)

tool = sys.argv[1] if len(sys.argv) > 1 else 'build/apps/gguf-inspect/gguf-inspect'
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, 'large.gguf')
    build(path)
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([tool, path], check=True, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t)
    print(f'file {os.path.getsize(path) / 2**30:.2f} GiB (sparse), 385 tensors, 151936-token vocabulary')
    print(f'gguf-inspect summary: best {min(runs) * 1000:.0f} ms, median {sorted(runs)[2] * 1000:.0f} ms over 5 runs')
