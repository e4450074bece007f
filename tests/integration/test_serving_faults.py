"""Faults around serving, with real gunicorn: shutdown under load, a broken metrics directory,
many dead workers."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import TrainedStore
from tests.support.load import SETOSA, Hammer, predict_once
from tests.support.processes import Server, start_api

pytestmark = pytest.mark.integration

CLIENTS = 16
# Client read timeout: generous, as the machine may be busy; a lost request is a reset, not a wait.
SLOW = 60.0
WORKERS = 2  # start_api's default
DEATHS = 20


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
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


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, as the metrics directory lives on in the container (we run as root)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["chattr", "-R", "-i", str(mount)], check=False)
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def workers_of(server: Server) -> set[int]:
    pid = server.process.pid
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def replace_every_worker(server: Server) -> None:
    """kill -9 each worker in turn and wait until the master has a new one in its place."""
    for pid in sorted(workers_of(server)):
        os.kill(pid, signal.SIGKILL)

        def replaced(dead: int = pid) -> bool:
            workers = workers_of(server)
            return dead not in workers and len(workers) == WORKERS

        wait_until(replaced)


def fill(mount: Path) -> None:
    failures: list[int | None] = []
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
    while not failures:
        try:
            os.write(fd, b"\0" * 4096)
        except OSError as error:
            failures.append(error.errno)
    os.close(fd)
    assert failures == [errno.ENOSPC]


def make_read_only(directory: Path) -> None:
    # chmod does not stop root, and a tmpfs with files open for writing cannot be remounted
    # read-only: the immutable attribute refuses every new file, to root too.
    subprocess.run(["chattr", "+i", str(directory)], check=True)


@pytest.mark.parametrize("break_directory", [fill, make_read_only], ids=["full", "read_only"])
def test_a_broken_metrics_directory_degrades_metrics_not_predictions(
    trained_store: TrainedStore, tmp_path: Path, small_tmpfs: Path, break_directory: Callable[[Path], None]
) -> None:
    metrics_dir = small_tmpfs / "metrics"
    server = serve(trained_store, tmp_path, MLOPS_METRICS_DIR=str(metrics_dir))
    try:
        first_workers = workers_of(server)
        break_directory(metrics_dir if break_directory is make_read_only else small_tmpfs)
        with Hammer(server.base_url, 4, timeout=SLOW, stop_on_refused=False) as hammer:
            replace_every_worker(server)  # new workers start with the directory broken
            while_replacing = hammer.stop()
        assert not workers_of(server) & first_workers
        with Hammer(server.base_url, 4, timeout=SLOW, stop_on_refused=False) as hammer:
            wait_until(lambda: hammer.result.answered >= 300)
            after = hammer.stop()
        assert server.process.poll() is None, "the master must stay up"
        assert requests.get(f"{server.base_url}/health", timeout=10).status_code == 200
        scraped = requests.get(f"{server.base_url}/metrics", timeout=10)
    finally:
        server.stop()
    # A sync worker killed with -9 loses at most the one request it was answering.
    assert while_replacing.lost <= WORKERS, while_replacing.outcomes
    assert while_replacing.wrong == 0, while_replacing.outcomes
    assert after.lost == 0, after.outcomes
    assert after.wrong == 0, after.outcomes
    assert scraped.status_code == 200
    assert "mlserve_metrics_degraded 1.0" in scraped.text
    log = server.log()
    assert "metrics degraded: cannot write the metrics directory" in log
    assert "SIGBUS" not in log
    assert "failed to boot" not in log


def predict_200s(metrics_text: str) -> float:
    pattern = r'mlserve_http_requests_total\{endpoint="/predict",method="POST",status="200"\} (\S+)'
    match = re.search(pattern, metrics_text)
    return float(match.group(1)) if match else 0.0


def test_dead_workers_leave_the_metrics_directory_flat(trained_store: TrainedStore, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    server = serve(trained_store, tmp_path, MLOPS_METRICS_DIR=str(metrics_dir))
    answered = 0
    try:
        for _ in range(DEATHS // WORKERS):
            for _ in range(10):
                outcome = predict_once("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]), SETOSA, 10)
                assert outcome == "200"
                answered += 1
            replace_every_worker(server)
        scraped = requests.get(f"{server.base_url}/metrics", timeout=10).text
        files = sorted(path.name for path in metrics_dir.glob("*.db"))
    finally:
        server.stop()
    # The live workers' files (at most four each), one archive per kind after DEATHS deaths, and
    # the master's own counter file (app/serving/master_metrics.py).
    assert len(files) <= WORKERS * 4 + 2 + 1, files
    assert "counter_archive.db" in files
    assert "histogram_archive.db" in files
    assert predict_200s(scraped) == answered  # no dead worker's count is lost
    assert "stay in their own files" not in server.log()
