"""Free ports, clean environments, waiting for HTTP, and real server processes (gunicorn, MLflow).

`make bench` starts its servers with the same helpers (bench/servers.py imports them from here).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without MLOPS_*/MLflow/Prometheus leftovers, plus `extra`; venv bin first."""
    dropped = ("MLOPS_", "PROMETHEUS_MULTIPROC", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def wait_for_http(
    url: str, timeout: float = 60.0, status: int = 200, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == status:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s (last: {last})")


@dataclass
class Server:
    """A real server process (gunicorn, mlflow, prometheus) with its log file."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_process(args: list[str], env: Mapping[str, str], log_path: Path, base_url: str) -> Server:
    log_file = log_path.open("wb")
    process = subprocess.Popen(args, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
    return Server(process, base_url, log_path, dict(env))


def start_api(
    env_extra: Mapping[str, str], log_path: Path, workers: int = 2, wait_ready: bool = True
) -> Server:
    """The real API under gunicorn with the production config (app/serving/gunicorn_conf.py)."""
    port = free_port()
    env = clean_env(
        {"MLOPS_HOST": "127.0.0.1", "MLOPS_PORT": str(port), "MLOPS_WORKERS": str(workers), **env_extra}
    )
    server = start_process(
        [
            str(VENV_BIN / "gunicorn"),
            "--config",
            "python:app.serving.gunicorn_conf",
            "app.serving.api:create_app()",
        ],
        env,
        log_path,
        f"http://127.0.0.1:{port}",
    )
    try:
        wait_for_http(
            f"{server.base_url}/ready" if wait_ready else f"{server.base_url}/health",
            90,
            process=server.process,
        )
    except Exception:
        server.stop()
        raise RuntimeError(f"API did not start; log:\n{server.log()[-4000:]}") from None
    return server


def start_mlflow_server(root: Path) -> Server:
    """A real MLflow tracking server over HTTP on loopback (SQLite backend, proxied artifacts)."""
    port = free_port()
    server = start_process(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        clean_env({}),
        root / "mlflow.log",
        f"http://127.0.0.1:{port}",
    )
    try:
        wait_for_http(f"{server.base_url}/health", timeout=120, process=server.process)
    except Exception:
        server.stop()
        raise RuntimeError(f"mlflow server did not start:\n{server.log()[-3000:]}") from None
    return server


def train(
    tracking_uri: str, artifact_root: Path, log_path: Path, *args: str, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the real training command (`python -m app.training.train`) against a store."""
    env = clean_env(
        {"MLOPS_TRACKING_URI": tracking_uri, "MLOPS_ARTIFACT_ROOT": str(artifact_root), **env_extra}
    )
    result = subprocess.run(
        [sys.executable, "-m", "app.training.train", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log_path.write_text(result.stdout + result.stderr)
    return result


def wait_until_answering(
    name: str, url: str, verify: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 20
) -> None:
    """Wait until `url` answers over TLS verified against `verify`; fail with `name`'s log if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, verify=verify, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"{name} did not answer {url}:\n{log.read_text()[-3000:]}")
