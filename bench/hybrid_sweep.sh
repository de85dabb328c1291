#!/usr/bin/env bash
# Hybrid CPU/GPU speed and memory on the GPU machine, side by side with llama.cpp, in one call.
# Runs from the repository root with .devkit/ (bench/device_kit.sh: gguf-run, gguf-synth) and, when present,
# .llama/ (the lead's prebuilt llama.cpp: .llama/bin/llama-bench and its libraries in .llama/lib).
# 1. generates the 17 GB synthetic Qwen3-30B-A3B Q4_K_M into /dev/shm (gguf-synth);
# 2. gguf-run with --fit --vram-budget 16G and 8G and with every expert on the CPU (-ngl all --cpu-moe),
#    next to llama-bench -ngl 99 -fa 1 with the --n-cpu-moe values that use about the same VRAM
#    (LLAMA_NCMOE, default "8 31 48": 15.7 / 7.8 / 2.3 GiB on the H200 machine); pp512, tg128 and the time
#    to first token of a 4096-token prompt; peak device memory sampled by nvidia-smi every 250 ms;
# 3. the never-OOM sweep: --fit --vram-budget from 4 to 24 GiB in 2 GiB steps, each loading and
#    generating, with the peak device memory measured against the budget (a line per budget, FAIL when over).
# Knobs: THREADS (16), REPS (2), SKIP_SWEEP=1, SKIP_LLAMA=1. Raw log: $OUT/hybrid_sweep.log.
set -uo pipefail
kit=.devkit
export LD_LIBRARY_PATH=$PWD/$kit/lib:$PWD/.llama/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
out=${OUT:-/tmp}
threads=${THREADS:-16}
reps=${REPS:-2}
model=/dev/shm/q3.gguf
exec > >(tee "$out/hybrid_sweep.log") 2>&1
[ -f "$model" ] || timeout 300 $kit/bin/gguf-synth "$model" > /dev/null || exit 1

# peak device memory (MiB) of a command, sampled every 250 ms
with_peak() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > /tmp/smi.log & local smi=$!
  "$@"; local rc=$?
  kill $smi; wait $smi 2>/dev/null
  peak=$(sort -n /tmp/smi.log | tail -1)
  return $rc
}
rate() { grep -E "^\| " | grep -E "\| *$1 *\|" | sed -E 's/.*\| +([0-9.]+) ± .*/\1/' | head -1; }
ours() {
  timeout 300 $kit/bin/gguf-run bench -m "$model" -t "$threads" "$@" 2>&1 | tee -a /tmp/ours.log
}
llama() {
  timeout 300 .llama/bin/llama-bench -m "$model" -ngl 99 -fa 1 -t "$threads" "$@" 2>&1 | tee -a /tmp/llama.log
}

echo "| setup | VRAM peak | pp512 | tg128 | 4096-token prompt: tok/s, first token |"
echo "|---|---:|---:|---:|---:|"
for setup in "--fit --vram-budget 16G" "--fit --vram-budget 8G" "-ngl all --cpu-moe"; do
  # shellcheck disable=SC2086
  with_peak ours $setup -p 512 -n 128 -r "$reps" > /tmp/run.log; p1=$peak
  pp=$(rate pp512 < /tmp/run.log); tg=$(rate tg128 < /tmp/run.log)
  # shellcheck disable=SC2086
  ours $setup -c 4096 -b 512 -p 4096 -n 0 -r 1 > /tmp/long.log
  pl=$(rate pp4096 < /tmp/long.log)
  echo "| gguf-run $setup | $p1 MiB | $pp | $tg | $pl, $(awk -v r="$pl" 'BEGIN { if (r > 0) printf "%.2f s", 4096 / r }') |"
done
if [ -z "${SKIP_LLAMA:-}" ] && [ -x .llama/bin/llama-bench ]; then
  for n in ${LLAMA_NCMOE:-8 31 48}; do
    with_peak llama -ncmoe "$n" -p 512 -n 128 -r "$reps" > /tmp/run.log; p1=$peak
    pp=$(rate pp512 < /tmp/run.log); tg=$(rate tg128 < /tmp/run.log)
    llama -ncmoe "$n" -p 4096 -n 0 -r 1 -ub 512 -b 4096 > /tmp/long.log
    pl=$(rate pp4096 < /tmp/long.log)
    echo "| llama.cpp --n-cpu-moe $n | $p1 MiB | $pp | $tg | $pl, $(awk -v r="$pl" 'BEGIN { if (r > 0) printf "%.2f s", 4096 / r }') |"
  done
fi

if [ -z "${SKIP_SWEEP:-}" ]; then
  echo; echo "| --vram-budget | VRAM peak | within | pp64 | tg16 |"; echo "|---:|---:|---|---:|---:|"
  for gib in 4 6 8 10 12 14 16 18 20 22 24; do
    with_peak ours --fit --vram-budget "${gib}G" -p 64 -n 16 -r 1 > /tmp/run.log
    pp=$(rate pp64 < /tmp/run.log); tg=$(rate tg16 < /tmp/run.log)
    ok=ok; [ -n "$tg" ] && [ "$peak" -le $((gib * 1024)) ] || ok=FAIL
    echo "| ${gib} GiB | $peak MiB | $ok | ${pp:-error} | ${tg:-error} |"
  done
fi
