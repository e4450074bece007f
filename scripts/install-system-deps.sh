#!/usr/bin/env bash
# Install the Debian packages that tests, benchmarks and the local stack need; skip what is present.
set -euo pipefail

packages=(prometheus nginx-light pebble certbot wrk chromium chromium-driver docker.io debootstrap openssh-client curl openssl rclone)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "installing Debian packages: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
