#!/bin/sh
# The goal table of docs/quantize.md ("Types chosen from measured sensitivity"): for each fixture model
# and each of llama.cpp's Q4_K_M, Q3_K_M and IQ4_XS sizes with an imatrix (REFERENCE.md), a file of that
# size made with --target-size, and its mean KLD against the bf16 model on dev_eval.txt (64 chunks of
# 256, as REFERENCE.md) and on held-out text: the last third of calibration.txt, which neither the
# imatrix nor the sensitivities see (they are measured on the first two thirds). llama.cpp's KLD on the
# held-out text is measured on the same recipe made by gguf-quantize with llama-imatrix's file (the
# recipes reproduce llama-quantize's files; docs/quantize.md, "Quality vs llama.cpp").
# Usage: scripts/quant-goal-table.sh MODEL [WORKDIR]   (MODEL: dense or moe; run from the repository root
# after building; several minutes per model on 2 cores)
set -eu
m=$1
W=${2:-/tmp/quant-goal}
B=build/apps
S=../shared/fixtures
T=${THREADS:-2}
mkdir -p "$W"
# the split at the first newline after 200000 bytes
python3 -c "
b=open('$S/text/calibration.txt','rb').read(); c=b.index(b'\n',200000)+1
open('$W/calib-a.txt','wb').write(b[:c]); open('$W/calib-b.txt','wb').write(b[c:])"
bf16=$S/gguf/tiny-$m-bf16.gguf
run() { $B/gguf-run/gguf-run "$@" 2>/dev/null; }
run perplexity -m $bf16 -f $S/text/dev_eval.txt -c 256 -b 256 --chunks 64 -t $T --kl-divergence-base $W/$m-dev.kld >/dev/null
run perplexity -m $bf16 -f $W/calib-b.txt -c 256 -b 256 --chunks 64 -t $T --kl-divergence-base $W/$m-held.kld >/dev/null
kld() { run perplexity -m "$1" -c 256 -b 256 -t $T --kl-divergence-base "$2" --kl-divergence | awk '/mean KLD/ {print $3}'; }
for spec in Q4_K_M IQ4_XS Q3_K_M; do
  size=$(awk -F'|' -v m="tiny-$m" -v r="$spec" '$2 ~ " "m" " && $3 ~ " "r" " && $4 ~ "yes" {gsub(/ /,"",$5); print $5}' $S/llama-cpp/REFERENCE.md)
  ref_dev=$(awk -F'|' -v m="tiny-$m" -v r="$spec" '$2 ~ " "m" " && $3 ~ " "r" " && $4 ~ "yes" {gsub(/ /,"",$7); print $7}' $S/llama-cpp/REFERENCE.md)
  $B/gguf-quantize/gguf-quantize --force --target-size $size --calibration $W/calib-a.txt --cache-dir $W/cache \
      $bf16 $W/$m-ours.gguf $spec $T >/dev/null 2>$W/$m-$spec.log
  $B/gguf-quantize/gguf-quantize --force --imatrix $S/llama-cpp/imatrix-$m.gguf $bf16 $W/$m-ref.gguf $spec $T >/dev/null 2>&1
  ours_size=$(stat -c %s $W/$m-ours.gguf)
  echo "tiny-$m $spec size $size ours $ours_size | dev KLD llama.cpp $ref_dev ours $(kld $W/$m-ours.gguf $W/$m-dev.kld)" \
       "| held-out KLD llama.cpp-recipe $(kld $W/$m-ref.gguf $W/$m-held.kld) ours $(kld $W/$m-ours.gguf $W/$m-held.kld)"
done
