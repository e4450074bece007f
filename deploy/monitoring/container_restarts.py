"""Each stack container's restart count, for node-exporter's textfile collector.

    python3 container_restarts.py --project mlops \
        --output /var/lib/mlops/textfile/mlops_container_restarts.prom

Run every minute by the systemd timer `mlops-container-restarts.timer` (the stack role). Docker's
engine metrics have no restart count; `docker inspect` has it (`RestartCount`: restarts by the
restart policy since the container was created). Prometheus alerts on its increase
(config/prometheus/rules/host.yml); a recreated container starts again at 0, which `increase()`
takes as a counter reset. One-off containers (`docker compose run`: the trainer, backups) are left
out. Standard library only (the host's Python).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

METRIC = "mlops_container_restarts_total"
SERVICE_LABEL = "com.docker.compose.service"
INSPECT_FORMAT = f'{{{{index .Config.Labels "{SERVICE_LABEL}"}}}} {{{{.RestartCount}}}}'


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def restart_counts(project: str) -> dict[str, int]:
    """Compose service name -> restarts of its containers (summed when it has several)."""
    ids = docker(
        "ps", "--all", "--quiet",
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", "label=com.docker.compose.oneoff=False",
    ).split()  # fmt: skip
    counts: dict[str, int] = {}
    if not ids:
        return counts
    for line in docker("inspect", "--format", INSPECT_FORMAT, *ids).splitlines():
        service, _, count = line.rpartition(" ")
        if service:
            counts[service] = counts.get(service, 0) + int(count)
    return counts


def exposition(counts: dict[str, int]) -> str:
    lines = [
        f"# HELP {METRIC} Restarts of the stack's containers by Docker's restart policy.",
        f"# TYPE {METRIC} counter",
    ]
    lines += [f'{METRIC}{{container="{service}"}} {count}' for service, count in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Temporary file renamed over the old one: the collector never reads half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o644)
    temporary.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="container_restarts.py", description=__doc__)
    parser.add_argument("--project", required=True, help="the stack's compose project name")
    parser.add_argument("--output", type=Path, required=True, help="the .prom file to write")
    args = parser.parse_args(argv)
    try:
        write_atomically(args.output, exposition(restart_counts(args.project)))
    except (subprocess.CalledProcessError, OSError, ValueError) as error:
        print(f"container-restarts: FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
