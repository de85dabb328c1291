#!/usr/bin/env bash
# gguf-verify's data scan against the host's memory read bandwidth on a multi-GB file (issue 15: the scan
# must reach at least half of it). Makes the synthetic 30B-A3B-shaped model with gguf-synth when the file is
# absent, measures read bandwidth with hostbw (../shared/tools/hostbw.c; bench/device_kit.sh packs it built),
# then scans at 1, 2, 4, ... threads up to all cores; each scan runs twice, the second on a warm page cache
# (the figure that counts: the first may include reading the file from disk). Ends with one verdict line,
# best warm scan against best read bandwidth, and exit status 1 below 50%.
# Usage: bench/verify_scan.sh [GGUF]   (default /tmp/synth-30b-a3b.gguf; removed at the end when made here)
# Binaries from .devkit/bin (bench/device_kit.sh) when present, else from build/; VERIFY / SYNTH override.
# Everything printed goes to $OUT/verify_scan.txt too when $OUT is set (the device tool's output folder).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${OUT:-}" ] && exec > >(tee "$OUT/verify_scan.txt") 2>&1
file=${1:-/tmp/synth-30b-a3b.gguf}
bin=build/apps/gguf-verify/gguf-verify synth=build/bench/gguf-synth hostbw=
[ -x .devkit/bin/gguf-verify ] && bin=.devkit/bin/gguf-verify synth=.devkit/bin/gguf-synth
[ -x .devkit/bin/hostbw ] && hostbw=.devkit/bin/hostbw
[ -d .devkit/lib ] && export LD_LIBRARY_PATH=$PWD/.devkit/lib:${LD_LIBRARY_PATH:-}
verify=${VERIFY:-$bin}
synth=${SYNTH:-$synth}
shared=${GGUF_SHARED_DIR:-../shared}
if [ -z "$hostbw" ]; then
  gcc -O3 -march=native -fopenmp "$shared/tools/hostbw.c" -o /tmp/hostbw
  hostbw=/tmp/hostbw
fi
made=
if [ ! -f "$file" ]; then
  "$synth" "$file" ${SYNTH_ARGS:-}
  made=1
fi
echo "== $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' || true), $(nproc) cores"
ls -l "$file"
echo "== host read bandwidth"
bw=$("$hostbw" "${HOSTBW_GIB:-8}" | tee /dev/stderr | awk '{ if ($4 + 0 > best) best = $4 + 0 } END { print best }')
echo "== gguf-verify --checks scan"
best=0 best_t=0 t=1
while :; do
  for run in cold warm; do
    line=$("$verify" "$file" --checks scan -t $t 2>&1 | grep -E 'scan' | sed 's/^ *//' | head -1)
    echo "threads $t ($run): $line"
    gbs=$(echo "$line" | sed -n 's/.*(\([0-9.]*\) GB\/s).*/\1/p')
    if [ "$run" = warm ] && [ -n "$gbs" ] && awk -v a="$gbs" -v b="$best" 'BEGIN { exit !(a > b) }'; then
      best=$gbs best_t=$t
    fi
  done
  [ "$t" -ge "$(nproc)" ] && break
  t=$((t * 2 > $(nproc) ? $(nproc) : t * 2))
done
[ -n "$made" ] && rm -f "$file"
awk -v s="$best" -v b="$bw" -v t="$best_t" 'BEGIN {
  r = (b > 0) ? s / b : 0
  verdict = (r >= 0.5) ? "PASS (>= 50%)" : "FAIL (< 50%)"
  printf "verify_scan: best warm scan %.1f GB/s (%d threads) = %.0f%% of the host read bandwidth %.1f GB/s: %s\n", s, t, 100 * r, b, verdict
  exit (r >= 0.5) ? 0 : 1 }'
