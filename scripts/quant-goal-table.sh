#!/bin/sh
# The goal table of docs/quantize.md ("Types chosen from measured sensitivity"): for each fixture model
# and each of llama.cpp's Q4_K_M, Q3_K_M and IQ4_XS sizes with an imatrix (REFERENCE.md), a file of that
# size made with --target-size, and its mean KLD against the bf16 model on dev_eval.txt (64 chunks of
# 256, as REFERENCE.md) and on held-out text: the last third of calibration.txt, which neither the
# imatrix nor the sensitivities see (they are measured on the first two thirds). llama.cpp's KLD on the
# held-out text is measured on llama-quantize's file when LLAMA_CPP_BIN names the folder holding it,
# else on the same recipe made by gguf-quantize (the same types as llama-quantize's, but 0-7% lower KLD:
# docs/quantize.md, "Quality vs llama.cpp"; IQ4_XS is the 7%), both with an imatrix of the first two
# thirds only (gguf-run imatrix, equal to llama-imatrix's within 1e-3): the fixtures' llama-imatrix file
# was made on all of calibration.txt, so a reference made with it would have seen the held-out text.
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
run imatrix -m $bf16 -f $W/calib-a.txt -c 256 -t $T -o $W/$m-imatrix-a.gguf >/dev/null
kld() { run perplexity -m "$1" -c 256 -b 256 -t $T --kl-divergence-base "$2" --kl-divergence | awk '/mean KLD/ {print $3}'; }
for spec in Q4_K_M IQ4_XS Q3_K_M; do
  size=$(awk -F'|' -v m="tiny-$m" -v r="$spec" '$2 ~ " "m" " && $3 ~ " "r" " && $4 ~ "yes" {gsub(/ /,"",$5); print $5}' $S/llama-cpp/REFERENCE.md)
  ref_dev=$(awk -F'|' -v m="tiny-$m" -v r="$spec" '$2 ~ " "m" " && $3 ~ " "r" " && $4 ~ "yes" {gsub(/ /,"",$7); print $7}' $S/llama-cpp/REFERENCE.md)
  $B/gguf-quantize/gguf-quantize --force --target-size $size --calibration $W/calib-a.txt --cache-dir $W/cache \
      $bf16 $W/$m-ours.gguf $spec $T >/dev/null 2>$W/$m-$spec.log
  if [ -n "${LLAMA_CPP_BIN:-}" ]; then
    ref_by=llama-quantize
    "$LLAMA_CPP_BIN/llama-quantize" --imatrix $W/$m-imatrix-a.gguf $bf16 $W/$m-ref.gguf $spec $T >/dev/null 2>&1
  else
    ref_by=gguf-quantize
    $B/gguf-quantize/gguf-quantize --force --imatrix $W/$m-imatrix-a.gguf $bf16 $W/$m-ref.gguf $spec $T >/dev/null 2>&1
  fi
  ours_size=$(stat -c %s $W/$m-ours.gguf)
  echo "tiny-$m $spec size $size ours $ours_size | dev KLD llama.cpp $ref_dev ours $(kld $W/$m-ours.gguf $W/$m-dev.kld)" \
       "| held-out KLD llama.cpp recipe ($ref_by) $(kld $W/$m-ref.gguf $W/$m-held.kld) ours $(kld $W/$m-ours.gguf $W/$m-held.kld)"
done
