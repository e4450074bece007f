#!/usr/bin/env bash
# Build a Debian base image with debootstrap + `docker import` (no registry needed), cached by tag.
# usage: scripts/build-base-image.sh SUITE TAG [extra Debian packages...]
#   scripts/build-base-image.sh trixie mlops-platform/debian:trixie
#   scripts/build-base-image.sh bookworm mlops-platform/python:3.11-bookworm python3 python3-venv ca-certificates
# Used where images cannot be pulled (this build machine, air-gapped hosts). Skips work when TAG exists.
set -euo pipefail

suite="$1"
tag="$2"
shift 2
docker_cli="${DOCKER:-docker}"
if "$docker_cli" image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag exists (cached)"
    exit 0
fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d /tmp/debootstrap-XXXXXX)"
trap 'rm -rf "$root"' EXIT
include=""
if (($# > 0)); then include="--include=$(
    IFS=,
    echo "$*"
)"; fi
echo "debootstrap $suite into $root ($include)"
debootstrap --variant=minbase $include "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    exit 1
}
rm -f "$root.log"
# Keep images small: no apt lists or caches; a fixed policy for `apt-get` in later layers.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | "$docker_cli" import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$tag"
echo "built base image $tag"
