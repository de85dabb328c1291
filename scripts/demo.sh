#!/usr/bin/env bash
# Set-up, build, and the main job on the embedded default model: generate Python from a prompt.
# Without arguments it runs `gguf-run -m testdata/tiny-dense-q8_0.gguf -p "def fibonacci(n):" -n 200`.
# Arguments go to gguf-run (e.g. -p "class Stack:" -n 300 --temp 0.7, or `bench`); the default model
# is added when no -m is given, and the default prompt when generating without -p.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
scripts/build.sh
args=("$@")
has_model=0 has_prompt=0
for a in "${args[@]}"; do
  case "$a" in
    -m|--model|--model=*) has_model=1 ;;
    -p|--prompt|--prompt=*) has_prompt=1 ;;
  esac
done
mode=generate
case "${args[0]:-}" in bench|chat|perplexity) mode=${args[0]} ;; esac
if [ $mode = generate ] && [ $has_prompt -eq 0 ]; then
  args+=(-p "def fibonacci(n):")
  [ ${#args[@]} -eq 2 ] && args+=(-n 200)
fi
if [ $has_model -eq 0 ]; then
  if [ $mode = generate ]; then args=(-m testdata/tiny-dense-q8_0.gguf "${args[@]}")
  else args=("$mode" -m testdata/tiny-dense-q8_0.gguf "${args[@]:1}"); fi
fi
exec build/apps/gguf-run/gguf-run "${args[@]}"
