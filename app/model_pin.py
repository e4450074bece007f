"""Which verified model the workers serve: chosen by the gunicorn master, inherited by forking.

This module is imported by the gunicorn master, so it must stay light: no onnxruntime (its
static state, copied into forked workers, makes them hang at exit) and no MLflow. The heavy
check runs in a child process (`python -m app.model_check`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PINNED_DIR_ENV = "MLOPS_PINNED_MODEL_DIR"
PINNED_VERSION_ENV = "MLOPS_PINNED_MODEL_VERSION"
PINNED_NAME_ENV = "MLOPS_PINNED_MODEL_NAME"
PINNED_SOURCE_ENV = "MLOPS_PINNED_MODEL_SOURCE"
PINNED_ENVS = (PINNED_DIR_ENV, PINNED_NAME_ENV, PINNED_VERSION_ENV, PINNED_SOURCE_ENV)

EXIT_UNAVAILABLE = 2
EXIT_REFUSED = 3


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    source: str
    directory: Path


def pin(ref: ModelRef) -> None:
    """Make processes forked from now on load exactly this verified model."""
    os.environ[PINNED_DIR_ENV] = str(ref.directory)
    os.environ[PINNED_NAME_ENV] = ref.name
    os.environ[PINNED_VERSION_ENV] = ref.version
    os.environ[PINNED_SOURCE_ENV] = ref.source


def pinned() -> ModelRef | None:
    directory = os.environ.get(PINNED_DIR_ENV)
    if not directory:
        return None
    return ModelRef(
        os.environ.get(PINNED_NAME_ENV, ""),
        os.environ.get(PINNED_VERSION_ENV, "local"),
        os.environ.get(PINNED_SOURCE_ENV, "path"),
        Path(directory),
    )


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    refused: bool
    message: str
    ref: ModelRef | None = None


def check_in_subprocess(env: dict[str, str], timeout_seconds: float = 300) -> CheckResult:
    """Resolve, download and verify in a fresh interpreter (pins dropped: re-resolve the alias)."""
    env = {k: v for k, v in env.items() if k not in PINNED_ENVS and k != "PROMETHEUS_MULTIPROC_DIR"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app.model_check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, False, f"model check timed out after {timeout_seconds:.0f} s")
    message = (result.stderr.strip().splitlines() or [""])[-1]
    if result.returncode == 0:
        record = json.loads(result.stdout.strip().splitlines()[-1])
        ref = ModelRef(record["name"], record["version"], record["source"], Path(record["directory"]))
        return CheckResult(True, False, "verified", ref)
    return CheckResult(False, result.returncode == EXIT_REFUSED, message or f"exit code {result.returncode}")
