"""gunicorn configuration of the prediction API (production and `make run` alike).

    gunicorn --config python:app.serving.gunicorn_conf "app.serving.api:create_app()"

Sync workers (the model is CPU-bound; threads do not help under the GIL), one per core by
default. The master verifies the model before any worker starts and refuses to start on a fast
form that disagrees with its reference; SIGHUP re-resolves the champion, verifies it, and
replaces workers gracefully, so requests in flight finish on the old model. How the verified
model reaches the workers: app/serving/model_handoff.py. SIGTERM answers every connection already
queued and refuses new ones (app/serving/graceful_drain.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.serving import alias_watch, graceful_drain, master_metrics, metric_files, model_handoff
from config.app_settings import ApiSettings, describe_validation_error

try:
    _settings = ApiSettings()
except ValidationError as _error:
    print(describe_validation_error(_error), file=sys.stderr)
    sys.exit(2)


def _fresh_metrics_dir(configured: Path | None) -> str:
    """prometheus-client's multiprocess files must start empty, or old counts come back."""
    directory = configured or Path(tempfile.mkdtemp(prefix="mlops-metrics-"))
    try:
        metric_files.fresh_directory(directory)
    except OSError as error:  # metrics degrade (each worker says so); serving goes on
        print(f"metrics directory {directory} is unusable: {error}", file=sys.stderr)
    return str(directory)


# Must be set before any worker imports prometheus_client (workers are forked after this).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _fresh_metrics_dir(_settings.metrics_dir)

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "app.serving.graceful_drain.DrainingSyncWorker"  # sync, draining on SIGTERM
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


def on_starting(server: Any) -> None:
    model_handoff.verify_and_pin(server, reloading=False)


# The alias watch (app/serving/alias_watch.py) once the master is ready; empty when it is off.
_watches: list[alias_watch.AliasWatch] = []


def when_ready(server: Any) -> None:
    graceful_drain.drain_on_term(server)
    master_metrics.prepare()  # before workers fork: the swap counts start at 0
    watch = alias_watch.watch_for(_settings, server.log)
    if watch is not None:
        _watches.append(watch)


def on_reload(server: Any) -> None:
    """SIGHUP, from an operator or the alias watch: verify the alias's version, then gunicorn
    replaces the workers gracefully (a refused version leaves the old pin, so they reload it)."""
    before = model_handoff.pinned()
    for watch in _watches:
        watch.reload_started()
    result = model_handoff.verify_and_pin(server, reloading=True)
    alias_watch.count_swap(result, before.version if before else None)
    for watch in _watches:
        watch.note_reload(result)


def child_exit(server: Any, worker: Any) -> None:
    """Drop the dead worker's live gauges and fold its counts into the archives (metric_files.py).

    Runs in the master's main loop: an error here must not stop the master, only leave files.
    """
    from prometheus_client import multiprocess

    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    try:
        multiprocess.mark_process_dead(worker.pid, str(directory))  # type: ignore[no-untyped-call]
    except OSError as error:
        server.log.warning("live gauges of worker %s stay: %s", worker.pid, error)
    try:
        metric_files.fold_dead_worker(directory, worker.pid)
    except OSError as error:
        server.log.warning("metrics of worker %s stay in their own files: %s", worker.pid, error)


def on_exit(server: Any) -> None:
    for watch in _watches:
        watch.stop()
    if _settings.metrics_dir is None:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
