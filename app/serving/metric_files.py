"""The multiprocess metrics directory: files that cannot crash a worker, and that do not pile up.

prometheus-client keeps each worker's metrics in mmap'ed files (`<kind>_<pid>.db`) and grows them
with truncate(), which makes a sparse file: on a full tmpfs the first write to a new page faults
and the kernel kills the worker with SIGBUS. Here every byte of a file is allocated
(posix_fallocate) before it is mapped, so a full directory is an OSError the caller can handle.

A dead worker's counters and histograms are folded into one archive file per kind, then its files
are deleted: the directory holds the live workers' files plus two archives however many workers
have died, so `/metrics` costs the same after a day of restarts, and totals never go backwards.
Folding happens in the master under an exclusive lock on LOCK_NAME; `/metrics` reads under a
shared lock, so a scrape sees a dead worker's counts exactly once (in its file or in the archive).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

FILE_BYTES = 1 << 16  # a new file's size, as prometheus-client starts it; growth doubles it
# The files a worker of this API opens at start: counter, histogram, gauge_livemax, gauge_livemin.
FILES_PER_WORKER = 4
LOCK_NAME = ".collect.lock"
# Kinds whose values add up across processes, so a dead worker's values can be summed into one.
ARCHIVED_KINDS = ("counter", "histogram")
ARCHIVE_ID = "archive"  # in place of the pid: `counter_archive.db`, read by the collector as any


def _entry_bytes(key: str) -> int:
    """Bytes one key takes in an MmapedDict: length, key padded to 8, value and timestamp."""
    encoded = len(key.encode("utf-8"))
    return 4 + encoded + (8 - (encoded + 4) % 8) + 16


class AllocatedMmapedDict(MmapedDict):
    """prometheus-client's MmapedDict with every page allocated before it is mapped."""

    def __init__(self, filename: str) -> None:
        fd = os.open(filename, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size == 0:
                os.posix_fallocate(fd, 0, FILE_BYTES)
        except OSError:
            os.close(fd)
            # An empty or half-made file would break every later /metrics read.
            Path(filename).unlink(missing_ok=True)
            raise
        os.close(fd)
        super().__init__(filename)  # type: ignore[no-untyped-call]

    def _init_value(self, key: str) -> None:
        capacity = self._capacity
        while self._used + _entry_bytes(key) > capacity:
            capacity *= 2
        if capacity != self._capacity:
            os.posix_fallocate(self._f.fileno(), 0, capacity)  # ENOSPC here, not SIGBUS later
        super()._init_value(key)  # type: ignore[no-untyped-call]


def directory_accepts_worker(directory: Path) -> bool:
    """Whether a new worker could make its files here now (full and read-only say no)."""
    probe = directory / f".probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        os.posix_fallocate(fd, 0, FILE_BYTES * FILES_PER_WORKER)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def fresh_directory(directory: Path) -> None:
    """Empty the directory of old counts (else they come back) and make the collection lock."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    (directory / LOCK_NAME).touch()


@contextmanager
def collection_lock(directory: Path, exclusive: bool, wait_seconds: float = 2.0) -> Iterator[bool]:
    """Hold the directory's lock (True), or go without it (False) when the lock cannot be had.

    The shared side waits as long as the master folds (milliseconds); the exclusive side gives up
    after `wait_seconds` rather than hold the master up, which also restarts workers.
    """
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        yield _acquire(fd, exclusive, wait_seconds)
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, exclusive: bool, wait_seconds: float) -> bool:
    if not exclusive:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return True
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)


def fold_dead_worker(directory: Path, pid: int) -> None:
    """Add a dead worker's counters and histograms to the archives and delete its files.

    Raises OSError when that cannot be done (full, read-only, lock held): its files then stay and
    are still counted, so no count is lost.
    """
    with collection_lock(directory, exclusive=True) as locked:
        if not locked:
            raise OSError(f"{directory / LOCK_NAME} is missing or busy")
        for kind in ARCHIVED_KINDS:
            dead = directory / f"{kind}_{pid}.db"
            if dead.exists():
                _fold(directory, kind, dead)


def _fold(directory: Path, kind: str, dead: Path) -> None:
    archive = directory / f"{kind}_{ARCHIVE_ID}.db"
    totals: dict[str, tuple[float, float]] = {}
    for source in (archive, dead):
        if source.exists():
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(source)):  # type: ignore[no-untyped-call]
                total, latest = totals.get(key, (0.0, 0.0))
                totals[key] = (total + value, max(latest, timestamp))
    # Written aside and renamed over the archive: readers see the old archive or the new one.
    staging = directory / f".{kind}_{ARCHIVE_ID}.staging"
    staging.unlink(missing_ok=True)
    try:
        store = AllocatedMmapedDict(str(staging))
        try:
            for key, (value, timestamp) in totals.items():
                store.write_value(key, value, timestamp)  # type: ignore[no-untyped-call]
        finally:
            store.close()  # type: ignore[no-untyped-call]
        os.replace(staging, archive)
    except OSError:
        staging.unlink(missing_ok=True)
        raise
    dead.unlink()
