#!/usr/bin/env bash
# Publish a JSON file as a GitHub Actions step output, compacted to one line (outputs are lines).
# usage: scripts/ci-json-output.sh NAME FILE   (appends NAME=<json> to $GITHUB_OUTPUT)
set -euo pipefail

name="${1:?usage: $0 NAME FILE}"
file="${2:?usage: $0 NAME FILE}"
compact="$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":"), sort_keys=True))' "$file")"
echo "$name=$compact" >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is set by GitHub Actions}"
