"""Start and stop the benchmarked servers: each in its own process group, logs in the run's temp dir."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The process helpers the tests use too: one copy, in the tests' support package.
from tests.support.processes import REPO, VENV_BIN, free_port
from tests.support.processes import clean_env as child_env

__all__ = ["REPO", "VENV_BIN", "child_env", "free_port"]


def http(url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    """GET (or POST JSON when `body` is given); return status and decoded JSON (or text)."""
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"bench talks to loopback only, not {url}")
    request = urllib.request.Request(  # noqa: S310 (checked above: http on loopback)
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback URL)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; log:\n{self.log_tail()}"
                )
            try:
                status, _ = http(self.base_url + path, timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as error:
                last = str(error)
            time.sleep(0.25)
        raise TimeoutError(
            f"{self.name}: {path} not 200 within {timeout:.0f} s ({last}); log:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole process group (master and workers), SIGKILL it if it lingers."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Workers of a master that died first would keep the group alive: end them too.
        _signal_group(self.process.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def start(name: str, args: list[str], env: Mapping[str, str], log_dir: Path, port: int) -> Server:
    """Start `args` in a new session (Ctrl-C reaches only the bench, which then stops it)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            args, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log_path)
