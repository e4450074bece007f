"""The gunicorn master watches the serving alias and reloads when it moves (MLOPS_MODEL_WATCH_SECONDS).

Every interval a daemon thread asks MLflow's REST API which version the alias names
(`GET /api/2.0/mlflow/registered-models/alias`, with the API's MLflow credentials). When that is
not the version the master pinned, it sends the master SIGHUP: the same path as an operator's
SIGHUP (gunicorn_conf.on_reload -> model_handoff.verify_and_pin), so the new version is verified
in a child process and workers are replaced gracefully; a refused version leaves the old one
serving. The master stays light: plain urllib here, no MLflow import.

A refused version is not tried again every interval: the watch remembers it until the alias
names another version. MLflow being unreachable is logged and retried at the next interval.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from app.serving import master_metrics, model_handoff
from app.serving.master_metrics import SwapOutcome
from config.app_settings import ApiSettings, ModelSource

ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"
REQUEST_TIMEOUT_SECONDS = 10.0


class AliasUnavailable(Exception):
    """MLflow did not say which version the alias names (unreachable, refused, malformed)."""


def alias_version(settings: ApiSettings, env: dict[str, str]) -> str | None:
    """The version `settings.model_alias` names, or None when the model or alias does not exist."""
    if not watchable(settings.tracking_uri):
        raise AliasUnavailable(f"not an http(s) tracking URI: {settings.tracking_uri}")
    query = urllib.parse.urlencode({"name": settings.model_name, "alias": settings.model_alias})
    url = f"{settings.tracking_uri.rstrip('/')}{ALIAS_PATH}?{query}"
    request = urllib.request.Request(url)  # noqa: S310 - http(s) only, checked above
    for header, value in _auth_headers(env).items():
        request.add_header(header, value)
    try:
        with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked above
            request, timeout=REQUEST_TIMEOUT_SECONDS, context=_tls(env)
        ) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        if error.code == 404 or _says_missing(error):
            return None
        raise AliasUnavailable(f"MLflow answered HTTP {error.code}") from None
    except (OSError, ValueError) as error:  # URLError, timeouts, resets, bad JSON
        raise AliasUnavailable(str(error)) from None
    try:
        return str(body["model_version"]["version"])
    except (KeyError, TypeError):
        raise AliasUnavailable(f"unexpected answer: {str(body)[:200]}") from None


def watchable(tracking_uri: str) -> bool:
    """Whether the watch can ask this tracking URI over HTTP (not a local sqlite or file store)."""
    return urllib.parse.urlsplit(tracking_uri).scheme in ("http", "https")


def _says_missing(error: urllib.error.HTTPError) -> bool:
    """MLflow answers an unknown alias with 400 INVALID_PARAMETER_VALUE ("alias ... not found")."""
    try:
        detail = json.loads(error.read())
    except (OSError, ValueError):
        return False
    return error.code == 400 and "not found" in str(detail.get("message", ""))


def _auth_headers(env: dict[str, str]) -> dict[str, str]:
    """MLflow's client variables, as its REST client uses them: basic auth, else a bearer token."""
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if env.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"}
    return {}


def _tls(env: dict[str, str]) -> ssl.SSLContext | None:
    cafile = env.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cafile) if cafile else None


class AliasWatch:
    """Polls the alias in a daemon thread; `note_reload` (main thread) tells it how a reload went."""

    def __init__(
        self,
        settings: ApiSettings,
        log: Any,
        request_reload: Callable[[], None],
        resolve: Callable[[], str | None] | None = None,
    ) -> None:
        self._settings = settings
        self._log = log
        self._request_reload = request_reload
        self._resolve = resolve or (lambda: alias_version(settings, dict(os.environ)))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._requested: str | None = None  # the version a reload was asked for, until it ran
        self._reloading = False  # a reload (any SIGHUP) is verifying: its outcome is not known yet
        self._refused: str | None = None  # the version last refused, while the alias names it

    def start(self) -> None:
        threading.Thread(target=self._loop, name="alias-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.model_watch_seconds):
            try:
                self.check_once()
            except Exception:  # the watch must never take the master down
                self._log.exception("alias watch: unexpected error; retrying next interval")

    def check_once(self) -> None:
        """One poll: ask for a reload when the alias names a version that is neither served nor refused."""
        try:
            version = self._resolve()
        except AliasUnavailable as error:
            self._log.warning(
                "alias watch: cannot read @%s (%s); retrying", self._settings.model_alias, error
            )
            return
        with self._lock:
            # Under the lock: the master pins only between reload_started and note_reload.
            pinned = model_handoff.pinned()
            if version != self._refused:
                self._refused = None  # the alias moved on: a later return to it is a new promotion
            if version is None or (pinned and version == pinned.version) or version == self._refused:
                return
            if self._requested is not None or self._reloading:
                return  # a reload is queued or running: it resolves the alias itself
            self._requested = version
        self._log.info(
            "alias watch: @%s is version %s, serving %s: verifying it",
            self._settings.model_alias,
            version,
            pinned.version if pinned else "none",
        )
        self._request_reload()

    def reload_started(self) -> None:
        """A reload began (the watch's or an operator's SIGHUP): no other is asked for meanwhile."""
        with self._lock:
            self._reloading = True

    def note_reload(self, result: model_handoff.CheckResult) -> None:
        """After a reload: remember a refusal, so the same version is not verified every interval."""
        with self._lock:
            self._reloading = False
            requested, self._requested = self._requested, None
            if result.refused:
                self._refused = requested


def count_swap(result: model_handoff.CheckResult, before: str | None) -> None:
    """`mlserve_model_swaps_total`: a refusal, or a reload that pinned another version."""
    after = model_handoff.pinned()
    if result.refused:
        master_metrics.record_swap(SwapOutcome.REFUSED)
    elif after is not None and after.version != before:
        master_metrics.record_swap(SwapOutcome.LOADED)


def signal_master() -> None:
    """Reload as on an operator's SIGHUP: gunicorn handles it in its main loop, not in this thread."""
    os.kill(os.getpid(), signal.SIGHUP)


def watch_for(settings: ApiSettings, log: Any) -> AliasWatch | None:
    """A started watch, or None when watching is off or cannot work (logged once)."""
    if settings.model_watch_seconds == 0:
        log.info("alias watch off (MLOPS_MODEL_WATCH_SECONDS=0): send SIGHUP to load a new champion")
        return None
    if settings.model_source is not ModelSource.REGISTRY:
        return None
    if not watchable(settings.tracking_uri):
        log.info("alias watch needs an http(s) MLflow tracking URI; send SIGHUP to load a new champion")
        return None
    watch = AliasWatch(settings, log, signal_master)
    watch.start()
    log.info("watching @%s every %s s", settings.model_alias, settings.model_watch_seconds)
    return watch
