"""The multiprocess metrics directory: files fully allocated, dead workers folded into archives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.mmap_dict import mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from app.serving import metric_files, metric_values
from app.serving.metric_files import AllocatedMmapedDict

DEAD_WORKERS = 300


def counter_key(status: str) -> str:
    return mmap_key("requests", "requests_total", ["status"], [status], "Requests.")


def bucket_key(le: str) -> str:
    return mmap_key("latency", "latency_bucket", ["le"], [le], "Latency.")


def write_worker(directory: Path, pid: int, requests: float) -> None:
    """One worker's files as prometheus-client leaves them: a counter and a histogram."""
    counters: Any = AllocatedMmapedDict(str(directory / f"counter_{pid}.db"))
    counters.write_value(counter_key("200"), requests, 0.0)
    counters.write_value(counter_key("422"), 1.0, 0.0)
    counters.close()
    histograms: Any = AllocatedMmapedDict(str(directory / f"histogram_{pid}.db"))
    histograms.write_value(bucket_key("0.1"), requests, 0.0)
    histograms.write_value(bucket_key("+Inf"), 1.0, 0.0)
    histograms.close()


merge: Any = MultiProcessCollector.merge


def totals(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    files = [str(path) for path in directory.glob("*.db")]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in merge(files)
        for sample in metric.samples
    }


def test_files_are_allocated_before_they_are_mapped(tmp_path: Path) -> None:
    """Sparse pages are what a full tmpfs answers with SIGBUS; allocated ones cannot fault."""
    store: Any = AllocatedMmapedDict(str(tmp_path / "counter_1.db"))
    for index in range(2000):  # about 200 KB of keys: the file doubles twice
        store.write_value(counter_key(str(index)), 1.0, 0.0)
    store.close()
    stat = os.stat(tmp_path / "counter_1.db")
    assert stat.st_size > metric_files.FILE_BYTES * 2
    assert stat.st_blocks * 512 >= stat.st_size


def test_dead_workers_fold_into_one_archive_per_kind_and_keep_their_totals(tmp_path: Path) -> None:
    metric_files.fresh_directory(tmp_path)
    for pid in range(1, DEAD_WORKERS + 1):
        write_worker(tmp_path, pid, requests=float(pid))
    before = totals(tmp_path)
    for pid in range(1, DEAD_WORKERS + 1):
        metric_files.fold_dead_worker(tmp_path, pid)
    assert sorted(path.name for path in tmp_path.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    assert totals(tmp_path) == before
    assert before[("requests_total", (("status", "200"),))] == DEAD_WORKERS * (DEAD_WORKERS + 1) / 2


def test_a_live_workers_files_are_left_alone(tmp_path: Path) -> None:
    metric_files.fresh_directory(tmp_path)
    write_worker(tmp_path, 1, requests=5)
    write_worker(tmp_path, 2, requests=7)
    metric_files.fold_dead_worker(tmp_path, 1)
    names = sorted(path.name for path in tmp_path.glob("*.db"))
    assert names == ["counter_2.db", "counter_archive.db", "histogram_2.db", "histogram_archive.db"]
    assert totals(tmp_path)[("requests_total", (("status", "200"),))] == 12


def test_folding_without_the_lock_leaves_the_files(tmp_path: Path) -> None:
    write_worker(tmp_path, 1, requests=5)  # no fresh_directory: no lock file
    with pytest.raises(OSError, match="missing or busy"):
        metric_files.fold_dead_worker(tmp_path, 1)
    assert (tmp_path / "counter_1.db").exists()


def test_a_directory_that_refuses_files_is_reported(tmp_path: Path) -> None:
    assert metric_files.directory_accepts_worker(tmp_path)
    assert not metric_files.directory_accepts_worker(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []  # the probe cleans up after itself


@pytest.fixture
def fresh_process_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metric_values, "_process", metric_values._ProcessFiles())


@pytest.mark.usefixtures("fresh_process_files")
def test_values_share_files_while_the_directory_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    value = metric_values.ResilientValue(
        "counter", "requests", "requests_total", ["status"], ["200"], "Requests."
    )
    value.inc(3)
    assert metric_values.degraded_reason() is None
    assert totals(tmp_path)[("requests_total", (("status", "200"),))] == 3


@pytest.mark.usefixtures("fresh_process_files")
def test_values_count_in_memory_once_the_directory_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    value = metric_values.ResilientValue(
        "counter", "requests", "requests_total", ["status"], ["200"], "Requests."
    )
    value.inc(2)
    value.inc(1)
    assert value.get() == 3
    assert metric_values.degraded_reason() is not None
    assert "metrics degraded" in caplog.text
    gauge = metric_values.ResilientValue(
        "gauge", "ready", "ready", [], [], "Ready.", multiprocess_mode="livemin"
    )
    gauge.set(1)  # made after the failure: memory only, no new attempt at the directory
    assert gauge.get() == 1
    assert caplog.text.count("metrics degraded") == 1


@pytest.mark.usefixtures("fresh_process_files")
def test_metrics_degraded_is_reported_at_each_scrape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.serving.metrics_exposition import exposition

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metric_files.fresh_directory(tmp_path)
    assert b"mlserve_metrics_degraded 0.0" in exposition()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    assert b"mlserve_metrics_degraded 1.0" in exposition()
