"""Drive a server with wrk (POST JSON through a Lua script) and parse wrk's `--latency` report."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THREADS = 2
CONNECTIONS = 16

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


class WrkOutputError(ValueError):
    """wrk printed something this parser does not understand."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int

    @property
    def errors(self) -> int:
        """Socket errors (connect, read, write, timeout) plus non-2xx/3xx answers."""
        return self.socket_errors + self.non_2xx


def combine(rounds: Sequence[WrkResult]) -> WrkResult:
    """Rounds of equal length as one result: summed counts, mean req/s, median p50 and p99.

    wrk prints percentiles, not its histogram, so percentiles of the union cannot be computed;
    the median round's is the robust choice (one disturbed round moves it least).
    """
    if not rounds:
        raise ValueError("no wrk rounds to combine")
    return WrkResult(
        requests=sum(r.requests for r in rounds),
        requests_per_second=statistics.fmean(r.requests_per_second for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        socket_errors=sum(r.socket_errors for r in rounds),
        non_2xx=sum(r.non_2xx for r in rounds),
    )


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def _percentile(output: str, percent: int) -> float:
    match = re.search(rf"^\s+{percent}(?:\.0+)?%\s+{_DURATION}\s*$", output, re.MULTILINE)
    if match is None:
        raise WrkOutputError(f"no {percent}% latency line (run wrk with --latency)")
    return _to_ms(match.group(1), match.group(2))


def parse_wrk_output(output: str) -> WrkResult:
    """Requests, req/s, p50/p99 in ms and errors from the text `wrk --latency` prints."""
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if total is None or rate is None:
        raise WrkOutputError("no 'N requests in' or 'Requests/sec:' line")
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output, re.MULTILINE
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        requests_per_second=float(rate.group(1)),
        p50_ms=_percentile(output, 50),
        p99_ms=_percentile(output, 99),
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def write_post_script(path: Path, body: Any) -> Path:
    """A wrk Lua script that POSTs `body` as JSON on every request."""
    # A Lua long-bracket string takes the JSON text as is; pick a level its text does not close.
    text = json.dumps(body)
    level = "="
    while f"]{level}]" in text:
        level += "="
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines.append(f"wrk.body = [{level}[{text}]{level}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, seconds: int, timeout_seconds: int = 5) -> tuple[WrkResult, str]:
    """Run wrk against `url` for `seconds`; return the parsed result and wrk's raw output."""
    args = [
        "wrk",
        f"--threads={THREADS}",
        f"--connections={CONNECTIONS}",
        f"--duration={seconds}s",
        f"--timeout={timeout_seconds}s",
        f"--script={script}",
        "--latency",
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk_output(done.stdout), done.stdout
