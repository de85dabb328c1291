#!/usr/bin/env bash
# Builds the GGUF reader fuzz target with clang (libFuzzer + ASan + UBSan) and fuzzes it.
#   fuzz/run_fuzz.sh [SECONDS] [JOBS] [WORKDIR]
# SECONDS: total time (default 3600); JOBS: parallel fuzzing processes (default: all cores);
# WORKDIR: build dir, corpus and crash artefacts (default build-fuzz). Seeds: gguf-fuzz-seeds
# output, the committed fuzz/corpus, and the first 6000 bytes of every ../shared/fixtures/gguf
# file and of testdata/*.gguf. At the end the new corpus is merged (minimized) into WORKDIR/merged
# and a summary line is printed; any crash-*/leak-*/timeout-* file under WORKDIR is a finding.
# Building needs clang and Debian's libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev).
# SECONDS=0 only builds. A machine without clang (the GPU machine) can run binaries built elsewhere:
# copy WORKDIR/fuzz/ there and set GGUF_FUZZ_PREBUILT=1 to skip the build (the sanitizer and
# libFuzzer runtimes, libstdc++ and xxHash are linked in statically: only libc is needed). When $OUT is set
# (the device tool's output folder), the summary, the findings, the log's last 200 lines and the merged
# inputs that fuzz/corpus lacks are copied there.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-3600}
JOBS=${2:-$(nproc)}
WORK=${3:-build-fuzz}

if [ -z "${GGUF_FUZZ_PREBUILT:-}" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$WORK" -G Ninja -DGGUF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$WORK" --target gguf-reader-fuzz gguf-fuzz-seeds >/dev/null
fi
[ "$SECONDS_TOTAL" -gt 0 ] || { echo "fuzz: built $WORK/fuzz/gguf-reader-fuzz"; exit 0; }

SEEDS="$WORK/seeds"
CORPUS="$WORK/corpus"
ART="$WORK/artifacts"
mkdir -p "$SEEDS" "$CORPUS" "$ART"
"$WORK/fuzz/gguf-fuzz-seeds" "$SEEDS"
for f in ../shared/fixtures/gguf/*.gguf testdata/*.gguf; do
  [ -f "$f" ] && head -c 6000 "$f" > "$SEEDS/head-$(basename "$f")"
done

start=$(date +%s)
# -fork runs JOBS fuzzing processes that share one corpus; a crash stops nothing but is kept in ART
set +e
"$WORK/fuzz/gguf-reader-fuzz" -fork="$JOBS" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
  -max_total_time="$SECONDS_TOTAL" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$ART/" "$CORPUS" "$SEEDS" fuzz/corpus 2>"$WORK/fuzz.log"
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))

mkdir -p "$WORK/merged"
"$WORK/fuzz/gguf-reader-fuzz" -merge=1 "$WORK/merged" "$CORPUS" fuzz/corpus >/dev/null 2>&1 || true
findings=$(find "$ART" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
execs=$(grep -o 'exec/s: [0-9]*' "$WORK/fuzz.log" | tail -1 || true)
stats=$(grep -E '^#[0-9]+' "$WORK/fuzz.log" | tail -1 || true)
{
  echo "fuzz: ${elapsed}s with $JOBS jobs, exit $rc; last status: ${stats:-none} ${execs}"
  echo "fuzz: corpus $(ls "$CORPUS" | wc -l) files, merged $(ls "$WORK/merged" | wc -l); findings: $findings (in $ART)"
  echo "fuzz: sanitizer reports in the log: $(grep -c -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$WORK/fuzz.log" || true)"
} | tee "$WORK/summary.txt"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/fuzz/artifacts" "$OUT/fuzz/new-inputs"
  cp "$WORK/summary.txt" "$OUT/fuzz/"
  tail -n 200 "$WORK/fuzz.log" > "$OUT/fuzz/fuzz-log-tail.txt"
  cp "$ART"/* "$OUT/fuzz/artifacts/" 2>/dev/null || true
  for f in "$WORK/merged"/*; do
    [ -e "fuzz/corpus/$(basename "$f")" ] || cp "$f" "$OUT/fuzz/new-inputs/"
  done
fi
[ "$findings" -eq 0 ]
