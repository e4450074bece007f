"""The master's alias watch: when it asks for a reload, and how it reads the alias over HTTP.

The decisions run against a scripted alias; the HTTP side against a real server on loopback that
answers as MLflow's REST API does. The end-to-end swap under load is in
tests/integration/test_model_promotion.py.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import REGISTRY

from app.model.model_ref import ModelRef
from app.serving import master_metrics, metrics, model_handoff
from app.serving.alias_watch import ALIAS_PATH, AliasUnavailable, AliasWatch, alias_version, count_swap
from config.app_settings import ApiSettings


class Alias:
    """The alias as the watch sees it: a version, None (no alias) or an error."""

    def __init__(self) -> None:
        self.answer: str | Exception | None = None

    def __call__(self) -> str | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def alias() -> Alias:
    return Alias()


@pytest.fixture
def reloads() -> list[int]:
    return []


@pytest.fixture
def watch(alias: Alias, reloads: list[int], monkeypatch: pytest.MonkeyPatch) -> AliasWatch:
    for name in model_handoff.PINNED_ENVS:
        monkeypatch.delenv(name, raising=False)
    settings = ApiSettings(tracking_uri="http://mlflow.invalid:5000", model_watch_seconds=1)
    return AliasWatch(settings, logging.getLogger("test"), lambda: reloads.append(1), resolve=alias)


def serve(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the master's pin says after a reload (model_handoff.pin sets these variables)."""
    ref = ModelRef("iris-classifier", version, "registry", Path("/cache") / version)
    for name, value in (
        (model_handoff.PINNED_DIR_ENV, str(ref.directory)),
        (model_handoff.PINNED_NAME_ENV, ref.name),
        (model_handoff.PINNED_VERSION_ENV, ref.version),
        (model_handoff.PINNED_SOURCE_ENV, ref.source),
    ):
        monkeypatch.setenv(name, value)


def refused() -> model_handoff.CheckResult:
    return model_handoff.CheckResult(False, True, "probabilities differ")


def verified(version: str) -> model_handoff.CheckResult:
    ref = ModelRef("iris-classifier", version, "registry", Path("/cache") / version)
    return model_handoff.CheckResult(True, False, "verified", ref)


def swap_count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("mlserve_model_swaps_total", {"outcome": outcome})
    return value or 0.0


def test_the_served_version_or_no_alias_asks_for_nothing(
    watch: AliasWatch, alias: Alias, reloads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve("1", monkeypatch)
    alias.answer = "1"
    watch.check_once()
    alias.answer = None
    watch.check_once()
    assert reloads == []


def test_a_moved_alias_asks_for_one_reload_until_it_has_run(
    watch: AliasWatch, alias: Alias, reloads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve("1", monkeypatch)
    alias.answer = "2"
    watch.check_once()
    watch.check_once()  # the reload is still queued: no second SIGHUP
    assert reloads == [1]
    serve("2", monkeypatch)
    watch.note_reload(verified("2"))
    watch.check_once()
    assert reloads == [1]


def test_no_reload_is_asked_for_while_an_operators_reload_verifies(
    watch: AliasWatch, alias: Alias, reloads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve("1", monkeypatch)
    alias.answer = "2"
    watch.reload_started()  # SIGHUP by hand: the pin still says 1 while the child verifies 2
    watch.check_once()
    assert reloads == []
    serve("2", monkeypatch)
    watch.note_reload(verified("2"))
    watch.check_once()
    assert reloads == []


def test_a_refused_version_is_not_tried_again_until_the_alias_moves(
    watch: AliasWatch, alias: Alias, reloads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve("1", monkeypatch)
    alias.answer = "3"
    watch.check_once()
    watch.note_reload(refused())  # the pin stays on 1
    for _ in range(3):
        watch.check_once()
    assert reloads == [1]
    alias.answer = "1"  # rolled back: nothing to do
    watch.check_once()
    alias.answer = "3"  # promoted again (fixed, or on purpose): verified again
    watch.check_once()
    assert reloads == [1, 1]


def test_an_unreachable_registry_is_logged_and_retried(
    watch: AliasWatch,
    alias: Alias,
    reloads: list[int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    serve("1", monkeypatch)
    alias.answer = AliasUnavailable("connection refused")
    watch.check_once()
    assert "cannot read @champion (connection refused)" in caplog.text
    alias.answer = "2"
    watch.check_once()
    assert reloads == [1]


def test_swaps_are_counted_by_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded, refusals = swap_count("loaded"), swap_count("refused")
    serve("1", monkeypatch)
    count_swap(refused(), before="1")
    count_swap(verified("1"), before="1")  # the same version again (a SIGHUP): no swap
    serve("2", monkeypatch)
    count_swap(verified("2"), before="1")
    assert (swap_count("loaded"), swap_count("refused")) == (loaded + 1, refusals + 1)


def test_the_master_counter_shares_the_workers_namespace() -> None:
    assert master_metrics.NAMESPACE == metrics.NAMESPACE


class FakeMlflow(BaseHTTPRequestHandler):
    """MLflow's GetModelVersionByAlias: its answers for a version, a missing alias, an error."""

    expected_auth = "Basic " + base64.b64encode(b"api:s3cret").decode()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path != ALIAS_PATH or self.headers.get("Authorization") != self.expected_auth:
            self._answer(401, {"error_code": "UNAUTHENTICATED"})
        elif query["name"] == ["broken"]:
            self._answer(500, {"error_code": "INTERNAL_ERROR"})
        elif query["alias"] == ["champion"] and query["name"] == ["iris-classifier"]:
            self._answer(200, {"model_version": {"name": "iris-classifier", "version": "7"}})
        elif query["name"] == ["iris-classifier"]:
            message = f"Registered model alias {query['alias'][0]} not found."
            self._answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": message})
        else:
            self._answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def mlflow_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


LOGIN = {"MLFLOW_TRACKING_USERNAME": "api", "MLFLOW_TRACKING_PASSWORD": "s3cret"}


def test_the_alias_is_read_with_the_apis_credentials(mlflow_url: str) -> None:
    settings = ApiSettings(tracking_uri=mlflow_url)
    assert alias_version(settings, LOGIN) == "7"
    with pytest.raises(AliasUnavailable, match="HTTP 401"):
        alias_version(settings, {})


@pytest.mark.parametrize(
    ("model", "alias_name"), [("iris-classifier", "staging"), ("no-such-model", "champion")]
)
def test_no_alias_or_no_model_is_no_version(mlflow_url: str, model: str, alias_name: str) -> None:
    settings = ApiSettings(tracking_uri=mlflow_url, model_name=model, model_alias=alias_name)
    assert alias_version(settings, LOGIN) is None


def test_server_errors_and_unreachable_servers_are_unavailable(mlflow_url: str) -> None:
    with pytest.raises(AliasUnavailable, match="HTTP 500"):
        alias_version(ApiSettings(tracking_uri=mlflow_url, model_name="broken"), LOGIN)
    with pytest.raises(AliasUnavailable):
        alias_version(ApiSettings(tracking_uri="http://127.0.0.1:9"), LOGIN)  # discard port: refused
    with pytest.raises(AliasUnavailable, match="not an http"):
        alias_version(ApiSettings(tracking_uri="sqlite:///var/mlflow.db"), LOGIN)
