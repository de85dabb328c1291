#!/usr/bin/env bash
# CPU-only speed at the scale of a real MoE model, side by side with llama.cpp, on the GPU machine's host.
# Runs from the repository root with .devkit/ (bench/device_kit.sh) and .llama/ (the lead's prebuilt
# llama.cpp: .llama/bin/llama-bench, its libraries in .llama/lib, and a copy of ../shared/tools/hostbw.c).
# Generates the 17 GB synthetic Qwen3-30B-A3B Q4_K_M (gguf-synth), measures host read bandwidth, then
# gguf-run bench and llama-bench at 1, 8 and 16 threads (pp512/tg128; at one thread pp64/tg64 and one
# repetition, to stay within ~8 minutes), the dot kernels alone at each thread count (quant-bench), a
# GGUF_PROFILE pass and OpenMP's waiting policies.
# The raw log goes to $OUT/cpu_at_scale.log.
# Prints the table as soon as the speed runs are done, then the extra passes (EXTRAS=0 skips them).
# Knobs: THREADS="1 8 16", REPS=2, PRESET/TYPE/LAYERS for another model, SKIP_LLAMA=1, KEEP_MODEL=1, EXTRAS=0.
set -uo pipefail
kit=.devkit
llama=.llama
out=${OUT:-/tmp}
log=$out/cpu_at_scale.log
exec > >(tee "$log") 2>&1
export LD_LIBRARY_PATH=$PWD/$kit/lib:${LD_LIBRARY_PATH:-}
export CUDA_VISIBLE_DEVICES=  # CPU only, for both programs
start=$(date +%s)
threads=${THREADS:-"1 8 16"}
reps=${REPS:-2}
preset=${PRESET:-qwen3-30b-a3b}
type=${TYPE:-Q4_K_M}
layers=${LAYERS:-}
elapsed() { echo "[$(($(date +%s) - start)) s]"; }

echo "== machine"; lscpu | grep -E '^Model name|^CPU\(s\)|^Thread|^Core|^Socket|^NUMA node\(s\)|^L3'
free -g | head -2

# tmpfs when it has room (no disk in the way, and its pages are the page cache the model maps)
dir=/tmp
if [ "$(df -k --output=avail /dev/shm 2>/dev/null | tail -1)" -gt $((40 * 1024 * 1024)) ] 2>/dev/null; then dir=/dev/shm; fi
model=$dir/synth-$preset-${type,,}${layers:+-l$layers}.gguf
echo "== model $(elapsed)"
[ -f "$model" ] || $kit/bin/gguf-synth "$model" --preset "$preset" --type "$type" ${layers:+--layers $layers} || exit 1
ls -l "$model"
$kit/bin/gguf-inspect "$model" --json --tensors . > "$out/model.json"

echo "== host bandwidth $(elapsed)"
hostbw=
if [ -f $llama/hostbw.c ] && gcc -O3 -march=native -fopenmp $llama/hostbw.c -o /tmp/hostbw; then
  /tmp/hostbw ${HOSTBW_GIB:-8} | tee "$out/hostbw.txt"
  hostbw=$out/hostbw.txt
fi

print_table() {
echo "== table $(elapsed)"
python3 - "$res" "$out/model.json" "$hostbw" <<'PY'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
model = json.load(open(sys.argv[2]))
# bytes one decoded token reads: every tensor but the embedding table, experts in the used share
used = next((v for k, v in model["metadata"].items() if k.endswith("expert_used_count")), 0) if isinstance(model["metadata"], dict) else 0
count = next((v for k, v in model["metadata"].items() if k.endswith(".expert_count")), 0) if isinstance(model["metadata"], dict) else 0
per_tok = 0
for t in model["tensors"]:
    if t["name"] == "token_embd.weight":
        continue
    share = used / count if "_exps" in t["name"] and count else 1
    per_tok += t["bytes"] * share
bw = {}
if len(sys.argv) > 3 and sys.argv[3]:
    for l in open(sys.argv[3]):
        m = re.match(r"threads\s+(\d+)\s+read\s+([\d.]+)", l)
        if m: bw[int(m.group(1))] = float(m.group(2))
print(f"bytes read per decoded token: {per_tok / 1e9:.2f} GB")
def near_bw(t):
    ks = [k for k in bw if k <= t]
    return bw[max(ks)] if ks else None
print("| threads | host GB/s | tg bound tok/s | test | gguf-run tok/s | llama.cpp tok/s | ratio | gguf-run % of bound |")
print("|---:|---:|---:|---|---:|---:|---:|---:|")
keys = sorted({(r["threads"], r["test"]) for r in rows}, key=lambda k: (k[0], k[1][:2] != "pp", k[1]))
for th, test in keys:
    ours = next((r for r in rows if r["engine"] == "gguf-run" and r["threads"] == th and r["test"] == test), None)
    ref = next((r for r in rows if r["engine"] == "llama.cpp" and r["threads"] == th and r["test"] == test), None)
    b = near_bw(th)
    bound = b * 1e9 / per_tok if b else None
    f = lambda r: f"{r['ts']:.2f} ± {r['sd']:.2f}" if r else "-"
    ratio = f"{ours['ts'] / ref['ts']:.2f}x" if ours and ref else "-"
    pct = f"{100 * ours['ts'] / bound:.0f}%" if ours and bound and test.startswith("tg") else ""
    print(f"| {th} | {b if b else '-'} | {bound:.1f} |" if bound else f"| {th} | - | - |", end="")
    print(f" {test} | {f(ours)} | {f(ref)} | {ratio} | {pct} |")
PY
}

# gguf-run bench and llama-bench, one JSON line per test into results.jsonl
res=$out/cpu_at_scale.jsonl
: > "$res"
for t in $threads; do
  p=512 n=128 r=$reps
  [ "$t" = 1 ] && p=64 n=64 r=1
  echo "== gguf-run, $t threads, pp$p tg$n $(elapsed)"
  $kit/bin/gguf-run bench -m "$model" -p $p -n $n -r $r -t $t --json > "$out/ours-$t.json" &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for x in d["tests"]: print(json.dumps({"engine":"gguf-run","threads":d["threads"],"test":x["test"],"ts":x["tokens_per_second"],"sd":x["stddev"]}))' \
      "$out/ours-$t.json" | tee -a "$res"
  if [ -z "${SKIP_LLAMA:-}" ] && [ -x $llama/bin/llama-bench ]; then
    echo "== llama-bench, $t threads $(elapsed)"
    # its own libraries only: .devkit/lib's libstdc++ may be older than the one it was built against
    LD_LIBRARY_PATH=$PWD/$llama/lib $llama/bin/llama-bench -m "$model" -ngl 0 -t $t -p $p -n $n -r $r \
      -o jsonl 2>"$out/llama-$t.err" | tee "$out/llama-$t.jsonl" |
      python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); test=("pp%d" % d["n_prompt"]) if d["n_prompt"] else ("tg%d" % d["n_gen"])
    print(json.dumps({"engine":"llama.cpp","threads":d["n_threads"],"test":test,"ts":d["avg_ts"],"sd":d["stddev_ts"]}))' |
      tee -a "$res"
  fi
done

# the table first: a device call that runs out of time during the extra passes below still has it
print_table
[ "${EXTRAS:-1}" = 0 ] && { [ -n "${KEEP_MODEL:-}" ] || rm -f "$model"; echo "== done $(elapsed)"; exit 0; }

tmax=$(echo $threads | tr ' ' '\n' | sort -n | tail -1)
echo "== the dot kernels alone, streaming a 2048-column matrix far larger than the caches (GB/s of weights) $(elapsed)"
for t in $threads; do
  [ "$t" = 1 ] && continue
  $kit/bin/quant-bench --types q4_K,q6_K --cols 2048 --rows 16 --dot-rows 262144 --seconds 0.3 --threads $t |
    grep -E '^[|] (type|q)' | awk -F'|' -v t=$t '{print "threads 1 and " t ":" $2 "|" $8 "|" $9}'
done
echo "== OpenMP waiting at $tmax threads, tg64 (unset: libgomp spins ~300k pauses, then sleeps) $(elapsed)"
for env in "OMP_WAIT_POLICY=passive" "OMP_WAIT_POLICY=active" "GOMP_SPINCOUNT=10000" "OMP_PROC_BIND=close" \
           "OMP_PROC_BIND=spread"; do
  echo "$env"
  env $env $kit/bin/gguf-run bench -m "$model" -p 0 -n 64 -r 1 -t $tmax | grep -E 'tg64'
done
echo "== GGUF_PROFILE at $tmax threads: pp128 and tg32 (wall ms per op is what to read here) $(elapsed)"
GGUF_PROFILE=1 $kit/bin/gguf-run bench -m "$model" -p 128 -n 0 -r 1 -t $tmax 2>&1 | grep -vE '^\| -|^\| model'
GGUF_PROFILE=1 $kit/bin/gguf-run bench -m "$model" -p 0 -n 32 -r 1 -t $tmax 2>&1 | grep -vE '^\| -|^\| model'

echo "== load: time to the first token, plain mapping vs --prefault ($tmax threads; the model is in the page cache) $(elapsed)"
for mode in "" --prefault; do
  TIMEFORMAT="first token${mode:+ $mode}: %R s wall, %S s sys"
  time $kit/bin/gguf-run -m "$model" -t $tmax -p tt -n 1 $mode >/dev/null 2>&1
done

[ -n "${KEEP_MODEL:-}" ] || rm -f "$model"
echo "== done $(elapsed); raw log: $log"
