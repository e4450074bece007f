"""gunicorn configuration of the prediction API (production and `make run` alike).

    gunicorn --config python:app.gunicorn_conf "app.api:create_app()"

Sync workers (the model is CPU-bound; threads do not help under the GIL), one per core by
default. The master verifies the model before any worker starts and refuses to start on a fast
form that disagrees with its reference; SIGHUP re-resolves the champion, verifies it, and
replaces workers gracefully, so requests in flight finish on the old model.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.app_settings import ApiSettings, describe_validation_error

try:
    _settings = ApiSettings()
except ValidationError as _error:
    print(describe_validation_error(_error), file=sys.stderr)
    sys.exit(2)


def _fresh_metrics_dir(configured: Path | None) -> str:
    """prometheus-client's multiprocess files must start empty, or old counts come back."""
    if configured is None:
        return tempfile.mkdtemp(prefix="mlops-metrics-")
    configured.mkdir(parents=True, exist_ok=True)
    for stale in configured.glob("*.db"):
        stale.unlink()
    return str(configured)


# Must be set before any worker imports prometheus_client (workers are forked after this).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _fresh_metrics_dir(_settings.metrics_dir)

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "sync"
timeout = _settings.timeout_seconds
graceful_timeout = _settings.graceful_timeout_seconds
keepalive = 5
# Clients get a clear 400 from gunicorn rather than a hang on absurd request lines and headers.
limit_request_line = 8190
limit_request_fields = 50
accesslog = _settings.access_log
errorlog = "-"
loglevel = _settings.log_level
proc_name = "mlops-api"
# No control socket: it would be written to $HOME, which is read-only in the container.
control_socket_disable = True


def _verify_and_pin(server: Any, reloading: bool) -> None:
    # Only the light module here: the master must never import onnxruntime (see app/model_pin.py).
    from app import model_pin

    result = model_pin.check_in_subprocess(dict(os.environ))
    if result.ok and result.ref is not None:
        model_pin.pin(result.ref)
        server.log.info("verified %s version %s; workers will serve it", result.ref.name, result.ref.version)
    elif result.refused and not reloading:
        server.log.error("refusing to start: %s", result.message)
        sys.exit(3)
    elif result.refused:
        server.log.error("new model refused, still serving the previous one: %s", result.message)
    elif reloading and model_pin.pinned() is not None:
        server.log.warning("could not check for a new model (%s); keeping the current one", result.message)
    else:
        server.log.warning("no model yet (%s); workers start not ready and poll for one", result.message)


def on_starting(server: Any) -> None:
    _verify_and_pin(server, reloading=False)


def on_reload(server: Any) -> None:
    _verify_and_pin(server, reloading=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _settings.metrics_dir is None:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
