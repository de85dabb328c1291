#!/usr/bin/env bash
# Makes testdata/tiny-dense-q8_0.gguf, the project's embedded default model, with the project's own
# tools only: gguf-convert turns ../shared/fixtures/hf/tiny-dense into bf16 GGUF, gguf-quantize
# makes Q8_0 of it. Run from anywhere; BUILD_DIR picks the build tree (built if the apps are missing),
# GGUF_SHARED_DIR the shared fixtures (default: ../shared beside the checkout).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${GGUF_SHARED_DIR:-$root/../shared}"
build="${BUILD_DIR:-$root/build}"
src="$shared/fixtures/hf/tiny-dense"
out="$root/testdata/tiny-dense-q8_0.gguf"

if [[ ! -f "$src/config.json" ]]; then
    echo "error: $src/config.json not found (set GGUF_SHARED_DIR to the shared fixtures)" >&2
    exit 1
fi
convert_bin="$build/apps/gguf-convert/gguf-convert"
quantize_bin="$build/apps/gguf-quantize/gguf-quantize"
if [[ ! -x "$convert_bin" || ! -x "$quantize_bin" ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" --target gguf-convert gguf-quantize
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$convert_bin" "$src" -o "$tmp/tiny-dense-bf16.gguf" --outtype bf16
"$quantize_bin" "$tmp/tiny-dense-bf16.gguf" "$out" Q8_0
echo "wrote $out ($(stat -c %s "$out") bytes)"
