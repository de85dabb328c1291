#!/usr/bin/env bash
# Set-up, build and the whole test suite (unit + fixtures; fixtures skip when ../shared is absent).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
scripts/build.sh
if [ ! -d ../shared/fixtures ] && [ -z "${GGUF_SHARED_DIR:-}" ]; then
  echo "note: ../shared/fixtures not found: fixture tests will be reported as skipped" >&2
fi
cd build
ctest --output-on-failure -j "$(nproc)" -LE 'gpu|slow' "$@"
