"""How the verified model goes from the gunicorn master to its workers, step by step.

1. The master starts (`on_starting`) or gets SIGHUP (`on_reload`) in app/serving/gunicorn_conf.py,
   which calls `verify_and_pin(server, reloading)`.
2. `check_in_subprocess` starts a fresh interpreter, `python -m app.serving.model_handoff`, with
   any earlier pin removed from its environment, so it resolves the alias again.
3. In that child, `main` resolves the model (registry alias or local path), checks the cached
   copy of a registry version against the sha256s recorded on it in the registry (downloading it
   again if it differs) and verifies its fast form (reference rows through every form). It prints
   one JSON line {"name", "version", "source", "directory", "digests"} and exits 0 verified,
   2 no model yet, 3 refused (the fast form disagrees with the registry or its reference, or the
   cache is not private: never serve it). Its warnings (stderr) go to the master's log.
4. On exit 0 the master calls `pin`: MLOPS_PINNED_MODEL_* in its own environment name the
   verified version and the registry's sha256s of it. On 3 it refuses to start (or, on SIGHUP,
   keeps the previous pin); on 2 the workers start not ready and poll.
5. gunicorn forks the workers, which inherit that environment. Each worker's app loads its model
   with `load_for_worker`: the pinned version (`pinned`) when there is one, so every worker
   serves exactly the version the master verified; else it resolves per settings. A registry
   version is checked against the registry again (its cache may have changed since), falling
   back to the pinned sha256s while the registry is unreachable.

The master imports this module, so it must stay light: no onnxruntime (its static state, copied
into forked workers, makes them hang at exit) and no MLflow. Both are imported only inside
`main` and `load_for_worker`, which run in the child and in the workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.model.model_ref import ModelRef

if TYPE_CHECKING:
    from app.model.model_source import LoadedModel
    from config.app_settings import ApiSettings

PINNED_DIR_ENV = "MLOPS_PINNED_MODEL_DIR"
PINNED_VERSION_ENV = "MLOPS_PINNED_MODEL_VERSION"
PINNED_NAME_ENV = "MLOPS_PINNED_MODEL_NAME"
PINNED_SOURCE_ENV = "MLOPS_PINNED_MODEL_SOURCE"
PINNED_DIGESTS_ENV = "MLOPS_PINNED_MODEL_DIGESTS"
PINNED_ENVS = (PINNED_DIR_ENV, PINNED_NAME_ENV, PINNED_VERSION_ENV, PINNED_SOURCE_ENV, PINNED_DIGESTS_ENV)

# The child: `python -m` this module; its exit codes besides 0 (verified).
CHILD_MODULE = "app.serving.model_handoff"
EXIT_UNAVAILABLE = 2
EXIT_REFUSED = 3


# Step 1: the master's side.
def verify_and_pin(server: Any, reloading: bool) -> CheckResult:
    """Check the model in a child process; pin it if verified, else decide what the master does."""
    result = check_in_subprocess(dict(os.environ))
    for note in result.notes:
        server.log.warning("model check: %s", note)
    if result.ok and result.ref is not None:
        pin(result.ref, result.digests)
        server.log.info("verified %s version %s; workers will serve it", result.ref.name, result.ref.version)
    elif result.refused and not reloading:
        server.log.error("refusing to start: %s", result.message)
        sys.exit(EXIT_REFUSED)
    elif result.refused:
        server.log.error("new model refused, still serving the previous one: %s", result.message)
    elif reloading and pinned() is not None:
        server.log.warning("could not check for a new model (%s); keeping the current one", result.message)
    else:
        server.log.warning("no model yet (%s); workers start not ready and poll for one", result.message)
    return result


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    refused: bool
    message: str
    ref: ModelRef | None = None
    digests: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # the child's warnings, for the master's log


# Step 2: the child process, from the master.
def check_in_subprocess(env: dict[str, str], timeout_seconds: float = 300) -> CheckResult:
    """Resolve, download and verify in a fresh interpreter (pins dropped: re-resolve the alias)."""
    env = {k: v for k, v in env.items() if k not in PINNED_ENVS and k != "PROMETHEUS_MULTIPROC_DIR"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", CHILD_MODULE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, False, f"model check timed out after {timeout_seconds:.0f} s")
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    if result.returncode == 0:
        record = json.loads(result.stdout.strip().splitlines()[-1])
        ref = ModelRef(record["name"], record["version"], record["source"], Path(record["directory"]))
        return CheckResult(True, False, "verified", ref, record["digests"], tuple(lines))
    message = lines[-1] if lines else f"exit code {result.returncode}"
    return CheckResult(False, result.returncode == EXIT_REFUSED, message, notes=tuple(lines[:-1]))


# Step 3: inside the child.
def main() -> int:
    """Resolve, download and verify the model to serve; print its reference as one JSON line."""
    from app.model import model_source
    from app.model.fast_model import FastModelError
    from config.app_settings import ApiSettings

    try:
        model = model_source.load(ApiSettings())
    except model_source.ModelUnavailable as error:
        print(str(error), file=sys.stderr)
        return EXIT_UNAVAILABLE
    except FastModelError as error:
        print(str(error), file=sys.stderr)
        return EXIT_REFUSED
    ref = model.ref
    record = {
        "name": ref.name,
        "version": ref.version,
        "source": ref.source,
        "directory": str(ref.directory),
        "digests": dict(model.digests),
    }
    print(json.dumps(record), flush=True)
    return 0


# Step 4: back in the master.
def pin(ref: ModelRef, digests: Mapping[str, str]) -> None:
    """Make processes forked from now on load exactly this verified model."""
    os.environ[PINNED_DIR_ENV] = str(ref.directory)
    os.environ[PINNED_NAME_ENV] = ref.name
    os.environ[PINNED_VERSION_ENV] = ref.version
    os.environ[PINNED_SOURCE_ENV] = ref.source
    os.environ[PINNED_DIGESTS_ENV] = json.dumps(dict(digests))


# Step 5: in each forked worker.
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


def load_for_worker(settings: ApiSettings) -> LoadedModel:
    """The model the master pinned, else the one settings name (raises like model_source.load)."""
    from app.model import model_source

    ref = pinned()
    if ref is None:
        return model_source.load(settings)
    if ref.source != "registry":
        return model_source.load_ref(ref)
    known_digests = json.loads(os.environ.get(PINNED_DIGESTS_ENV) or "{}")
    return model_source.load_version(settings, ref.name, ref.version, known_digests)


if __name__ == "__main__":
    sys.exit(main())
