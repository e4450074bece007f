#!/usr/bin/env bash
# Keep the images this repo builds locally (debootstrap bases, the e2e test host, the stack's own
# images) between CI runs: `save DIR` writes every mlops-platform/* image into DIR, `load DIR`
# puts them back. Base images are skipped by tag when present and docker build reuses their layers.
# usage: scripts/ci-docker-cache.sh save|load DIR
set -euo pipefail

action="${1:?usage: $0 save|load DIR}"
dir="${2:?usage: $0 save|load DIR}"
docker_cli="${DOCKER:-docker}"
archive="$dir/mlops-images.tar"
case "$action" in
save)
    mkdir -p "$dir"
    mapfile -t images < <("$docker_cli" image ls --format '{{.Repository}}:{{.Tag}}' | grep '^mlops-platform/' | grep -v ':<none>$' || true)
    if ((${#images[@]} == 0)); then
        echo "no mlops-platform images to save"
        exit 0
    fi
    echo "saving ${#images[@]} images to $archive"
    "$docker_cli" save -o "$archive.partial" "${images[@]}"
    mv "$archive.partial" "$archive"
    ;;
load)
    if [[ -f $archive ]]; then
        echo "loading images from $archive"
        "$docker_cli" load -q -i "$archive"
    else
        echo "no image cache at $archive"
    fi
    ;;
*)
    echo "usage: $0 save|load DIR" >&2
    exit 2
    ;;
esac
