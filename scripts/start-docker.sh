#!/usr/bin/env bash
# Start a Docker daemon in the background when none answers (CI machines have no systemd).
set -euo pipefail

if docker info >/dev/null 2>&1; then
    exit 0
fi
log_dir="${DOCKERD_LOG_DIR:-/var/log}"
mkdir -p "$log_dir"
echo "starting dockerd (log: $log_dir/dockerd.log)"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "dockerd is up"
        exit 0
    fi
    sleep 1
done
echo "dockerd did not start within 60 s; last log lines:" >&2
tail -n 30 "$log_dir/dockerd.log" >&2
exit 1
