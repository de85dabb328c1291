#!/usr/bin/env python3
"""Runs the apps on randomly corrupted copies of a real model and reports any run that did not end
with exit status 0, 1 or 2 (a signal or an abort is a crash), that printed "nan" with exit 0, or that
left a file behind (a temp file, or an output of a failed run). The tools: gguf-run (generation and
perplexity), gguf-quantize, gguf-inspect and gguf-verify (every check but quality, writing a manifest). Bytes are changed in the metadata head
and in the tensor-info tail of the header, where the loaders' checks live, and every other run also in
the tensor data (where a changed byte can make a NaN or infinite scale).
Usage: fuzz/mutate_apps.py BUILD_DIR MODEL.gguf [runs] [seed]"""
import os, random, subprocess, sys, tempfile

build, model = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 300
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
src = open(model, 'rb').read()
header_end = min(len(src), 150_000)
tmp = tempfile.mkdtemp(prefix='mutate-apps-')
bad, out = os.path.join(tmp, 'in.gguf'), os.path.join(tmp, 'out.gguf')
text = os.path.join(tmp, 'text.txt')
open(text, 'w').write('def f(x):\n    return x * 2\n' * 200)
commands = [
    [f'{build}/apps/gguf-run/gguf-run', '-m', bad, '-p', 'def f(x):', '-n', '4', '-t', '1', '--temp', '0'],
    [f'{build}/apps/gguf-quantize/gguf-quantize', bad, out, 'Q4_K_M', '2'],
    [f'{build}/apps/gguf-inspect/gguf-inspect', bad, '--layers', '--tensors'],
    [f'{build}/apps/gguf-run/gguf-run', 'perplexity', '-m', bad, '-f', text, '-c', '128', '--chunks', '2', '-t', '1'],
    [f'{build}/apps/gguf-verify/gguf-verify', bad, '-t', '1', '--write-manifest', out],
]
statuses, crashes = {}, 0
for i in range(runs):
    data = bytearray(src)
    for _ in range(rng.randint(1, 4)):
        pos = rng.choice([rng.randrange(0, 3000), rng.randrange(header_end - 30_000, header_end)])
        if (i // len(commands)) % 2 == 1:
            pos = rng.randrange(header_end, len(src))
        data[pos] = rng.randrange(256)
    open(bad, 'wb').write(data)
    if os.path.exists(out):
        os.remove(out)
    cmd = commands[i % len(commands)]
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    status = r.returncode
    statuses[status] = statuses.get(status, 0) + 1
    left = sorted(set(os.listdir(tmp)) - {'in.gguf', 'text.txt', 'out.gguf'} - {f for f in os.listdir(tmp) if f.startswith('crash-')})
    nan = status == 0 and b'PPL = ' in r.stdout and b'nan' in r.stdout.lower()
    # gguf-verify writes its manifest even when another check fails: its exit 1 is a verdict, not a failed run
    failed_output = status != 0 and os.path.exists(out) and 'gguf-verify' not in cmd[0]
    if status not in (0, 1, 2) or nan or left or failed_output:
        crashes += 1
        keep = os.path.join(tmp, f'crash-{i}.gguf')
        os.rename(bad, keep)
        print(f'defect: {os.path.basename(cmd[0])} exit {status}, nan {nan}, left {left} on {keep}')
        for f in left:
            os.remove(os.path.join(tmp, f))
print(f'{runs} runs, exit statuses {dict(sorted(statuses.items()))}, {crashes} defects')
sys.exit(1 if crashes else 0)
