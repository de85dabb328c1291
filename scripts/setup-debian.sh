#!/usr/bin/env bash
# Installs the Debian packages the build and tests need; does nothing when they are all present.
set -euo pipefail

packages=(g++ cmake ninja-build libxxhash-dev libgtest-dev libgmock-dev nlohmann-json3-dev time)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
