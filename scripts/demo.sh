#!/usr/bin/env bash
# Set-up, build, and the main job on the embedded default model: generate Python from a prompt.
# Extra arguments go to gguf-run (e.g. -p "class Stack:" -n 200).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
scripts/build.sh
exec build/apps/gguf-run/gguf-run "$@"
