"""Faults around serving, with real gunicorn: shutdown under load, and a broken metrics directory."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TrainedStore
from tests.support.load import Hammer
from tests.support.processes import Server, start_api

pytestmark = pytest.mark.integration

CLIENTS = 16


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def serve(store: TrainedStore, tmp_path: Path, **env: str) -> Server:
    return start_api(
        {"MLOPS_TRACKING_URI": store.tracking_uri, "MLOPS_MODEL_CACHE_DIR": str(tmp_path / "cache"), **env},
        tmp_path / "gunicorn.log",
    )


def test_sigterm_under_load_answers_every_queued_request(trained_store: TrainedStore, tmp_path: Path) -> None:
    server = serve(trained_store, tmp_path)
    try:
        with Hammer(server.base_url, CLIENTS) as hammer:
            wait_until(lambda: hammer.result.answered >= 200)
            server.signal(signal.SIGTERM)
            assert server.process.wait(60) == 0
            outcome = hammer.finish()
    finally:
        server.stop()
    # Every request sent on an accepted connection got its (correct) answer; the clients that
    # came after the shutdown began were refused before they could send anything.
    assert outcome.lost == 0, outcome.outcomes
    assert outcome.wrong == 0, outcome.outcomes
    assert outcome.outcomes["refused"] == CLIENTS, outcome.outcomes
    assert "cannot drain" not in server.log()
