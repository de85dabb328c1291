#!/usr/bin/env bash
# gguf-verify's data scan against the host's memory read bandwidth on a multi-GB file (issue 15: the scan
# must reach at least half of it). Makes the synthetic 30B-A3B-shaped model with gguf-synth when the file is
# absent, measures read bandwidth with ../shared/tools/hostbw.c, then scans at 1, 2, 4, ... threads up to all
# cores; each scan runs twice, the second on a warm page cache (the figure that counts: the first may include
# reading the file from disk).
# Usage: bench/verify_scan.sh [GGUF]   (default /tmp/synth-30b-a3b.gguf)
# Binaries from .devkit/bin (bench/device_kit.sh) when present, else from build/; VERIFY / SYNTH override.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-/tmp/synth-30b-a3b.gguf}
bin=build/apps/gguf-verify/gguf-verify synth=build/bench/gguf-synth
[ -x .devkit/bin/gguf-verify ] && bin=.devkit/bin/gguf-verify synth=.devkit/bin/gguf-synth
[ -d .devkit/lib ] && export LD_LIBRARY_PATH=$PWD/.devkit/lib:${LD_LIBRARY_PATH:-}
verify=${VERIFY:-$bin}
synth=${SYNTH:-$synth}
shared=${GGUF_SHARED_DIR:-../shared}
[ -f "$file" ] || "$synth" "$file" ${SYNTH_ARGS:-}
ls -l "$file"
gcc -O3 -march=native -fopenmp "$shared/tools/hostbw.c" -o /tmp/hostbw && /tmp/hostbw 8
t=1
while :; do
  for run in cold warm; do
    echo -n "threads $t ($run): "
    "$verify" "$file" --checks scan -t $t 2>&1 | grep -E 'scan' | sed 's/^ *//'
  done
  [ "$t" -ge "$(nproc)" ] && break
  t=$((t * 2 > $(nproc) ? $(nproc) : t * 2))
done
