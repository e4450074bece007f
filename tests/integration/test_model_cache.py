"""The real API under gunicorn never trusts its model cache: every cached file is checked against
the sha256s recorded on the model version in the registry, at start, on SIGHUP and in each worker;
a changed, edited or missing copy is downloaded again, and a cache others can write to is refused.
"""

from __future__ import annotations

import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests

from app.model import bundle_digests
from app.model.fast_model import BUNDLE_DIR, GRAPH_FILE, METADATA_FILE, load_bundle
from tests.conftest import TrainedStore
from tests.support.model_files import champion_version, place_in_cache, swap_classes
from tests.support.processes import Server, start_api

pytestmark = pytest.mark.integration

SETOSA = [5.1, 3.5, 1.4, 0.2]
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


def start(trained_store: TrainedStore, cache: Path, log: Path) -> Server:
    return start_api(
        {"MLOPS_TRACKING_URI": trained_store.tracking_uri, "MLOPS_MODEL_CACHE_DIR": str(cache)}, log
    )


def answer(api: Server) -> str:
    """The prediction for SETOSA, or what went wrong instead (a status, a client timeout)."""
    try:
        response = requests.post(f"{api.base_url}/predict", json={"features": SETOSA}, timeout=30)
    except requests.RequestException as error:
        return f"no answer: {error}"
    return str(response.json()["prediction"]) if response.ok else f"HTTP {response.status_code}"


def ready(api: Server) -> bool:
    try:
        return requests.get(f"{api.base_url}/ready", timeout=5).ok
    except requests.RequestException:
        return False


@contextmanager
def answers_meanwhile(api: Server) -> Iterator[list[str]]:
    """Every answer to SETOSA while the block runs, from a client that keeps asking."""
    answers: list[str] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            answers.append(answer(api))

    thread = threading.Thread(target=ask)
    thread.start()
    try:
        yield answers
    finally:
        stop.set()
        thread.join()


def booted_workers(api: Server) -> int:
    return len(BOOTED.findall(api.log()))


def wait_until(condition: Callable[[], bool], api: Server, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"not {what} within {timeout} s; log:\n{api.log()[-3000:]}")


def recorded_digests(trained_store: TrainedStore) -> dict[str, str]:
    """The sha256s training recorded in the registry for the champion's fast form."""
    return bundle_digests.digests_of(trained_store.model_dir / BUNDLE_DIR)


def matches_registry(cached: Path, trained_store: TrainedStore) -> bool:
    """The cached bundle is, byte for byte, the one training recorded in the registry."""
    return bundle_digests.mismatches(cached / BUNDLE_DIR, recorded_digests(trained_store)) == []


def test_the_class_name_swap_in_metadata_json_is_caught_at_start(
    trained_store: TrainedStore, tmp_path: Path
) -> None:
    """The attack: class names and reference answers swapped together pass metadata.json's own
    checks, so the bundle alone would serve setosa as virginica."""
    cache = tmp_path / "cache"
    cached = place_in_cache(trained_store.model_dir, cache, champion_version(trained_store.tracking_uri))
    swap_classes(cached / BUNDLE_DIR / METADATA_FILE, "setosa", "virginica")
    fooled = load_bundle(cached).predict(np.asarray([SETOSA], np.float32))[0]
    assert fooled == ["virginica"]

    api = start(trained_store, cache, tmp_path / "api.log")
    try:
        assert requests.get(f"{api.base_url}/ready", timeout=5).status_code == 200
        assert {answer(api) for _ in range(20)} == {"setosa"}
    finally:
        api.stop()
    assert "metadata.json differs from the registry (sha256)); downloading it again" in api.log()
    assert matches_registry(cached, trained_store)


def truncate_graph(cached: Path) -> None:
    graph = cached / BUNDLE_DIR / GRAPH_FILE
    graph.write_bytes(graph.read_bytes()[:-64])


def swap_setosa_and_virginica(cached: Path) -> None:
    swap_classes(cached / BUNDLE_DIR / METADATA_FILE, "setosa", "virginica")


@pytest.mark.parametrize(
    ("damage", "signum", "workers_booted", "logged"),
    [
        # SIGHUP: the master checks (and downloads) before it forks two new workers.
        pytest.param(
            truncate_graph,
            signal.SIGHUP,
            4,
            "(model.onnx differs from the registry (sha256)); downloading it again",
            id="changed-graph-on-sighup",
        ),
        pytest.param(shutil.rmtree, signal.SIGHUP, 4, "", id="deleted-on-sighup"),
        # SIGTTIN: one more worker, forked with the master's pin: it checks the cache itself.
        pytest.param(
            swap_setosa_and_virginica,
            signal.SIGTTIN,
            3,
            "(metadata.json differs from the registry (sha256)); downloading it again",
            id="edited-metadata-in-a-new-worker",
        ),
    ],
)
def test_a_damaged_cache_is_downloaded_again_without_a_wrong_answer(
    trained_store: TrainedStore,
    tmp_path: Path,
    damage: Callable[[Path], None],
    signum: int,
    workers_booted: int,
    logged: str,
) -> None:
    cache = tmp_path / "cache"
    api = start(trained_store, cache, tmp_path / "api.log")
    try:
        cached = cache / "iris-classifier" / champion_version(trained_store.tracking_uri)
        damage(cached)
        with answers_meanwhile(api) as answers:
            api.signal(signum)
            wait_until(
                lambda: (
                    booted_workers(api) >= workers_booted
                    and matches_registry(cached, trained_store)
                    and ready(api)
                ),
                api,
                "downloaded again and ready",
            )
        assert answers
        assert set(answers) == {"setosa"}
        assert {answer(api) for _ in range(20)} == {"setosa"}  # the new workers answer right too
        assert logged in api.log()
        assert "refus" not in api.log()
    finally:
        api.stop()


def test_a_cache_others_can_write_to_is_refused(trained_store: TrainedStore, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(RuntimeError, match="API did not start"):
        start(trained_store, cache, tmp_path / "api.log")
    log = (tmp_path / "api.log").read_text()
    assert "refusing to start: refusing model cache" in log
    assert "writable by group or others (mode drwxrwxrwx)" in log
    assert list(cache.iterdir()) == []  # nothing was downloaded into it
