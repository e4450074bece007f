"""Metric values of a worker: in its shared files while the directory works, else in memory.

Installed as prometheus-client's value class (the library's own hook for multiprocess storage,
`prometheus_client.values.ValueClass`) before any metric is made. Like the library's class it
keeps one file per kind per process; unlike it, a file that cannot be made or grown (a full or
read-only directory) does not kill the worker: the worker logs it once, reports it through
`mlserve_metrics_degraded`, and keeps counting in memory. Its counts up to then stay in its files;
predictions are never affected.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from app.serving.metric_files import AllocatedMmapedDict

log = logging.getLogger(__name__)


class _ProcessFiles:
    """This process's files by kind, its values, and why it stopped sharing them (if it did)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, MmapedDict] = {}
        self.values: list[ResilientValue] = []
        self.degraded: str | None = None

    def file_for(self, kind: str) -> MmapedDict:
        file = self.files.get(kind)
        if file is None:
            directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
            file = self.files[kind] = AllocatedMmapedDict(str(directory / f"{kind}_{os.getpid()}.db"))
        return file

    def degrade(self, error: OSError) -> None:
        """Stop writing files for good: every value keeps its count in memory from now on."""
        if self.degraded is None:
            self.degraded = str(error)
            log.error(
                "metrics degraded: cannot write the metrics directory (%s); this worker keeps its "
                "metrics in memory and /metrics leaves them out. Predictions are unaffected.",
                error,
            )
        for value in self.values:
            value.detach()
        for file in self.files.values():
            file.close()  # type: ignore[no-untyped-call]
        self.files.clear()

    def start_over(self) -> None:
        """In a forked child: the parent's files are not ours; values restart from our own."""
        self.lock = threading.Lock()
        self.files.clear()
        self.degraded = None
        for value in self.values:
            value.attach()


_process = _ProcessFiles()
os.register_at_fork(after_in_child=_process.start_over)


def degraded_reason() -> str | None:
    """Why this worker keeps its metrics in memory only, or None while it shares them."""
    return _process.degraded


class ResilientValue:
    """A float in this worker's metric file for its kind, or in memory once the files failed."""

    _multiprocess = True

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: list[str],
        labelvalues: list[str],
        help_text: str,
        multiprocess_mode: str = "",
        **_: Any,
    ) -> None:
        self._kind = f"gauge_{multiprocess_mode}" if typ == "gauge" else typ
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        self._value = 0.0
        self._timestamp = 0.0
        self._file: MmapedDict | None = None
        with _process.lock:
            _process.values.append(self)
            self.attach()

    def attach(self) -> None:
        """Read this value from (and bind it to) this process's file, unless files have failed."""
        self._file = None
        if _process.degraded is not None:
            return
        try:
            file = _process.file_for(self._kind)
            self._value, self._timestamp = file.read_value(self._key)  # type: ignore[no-untyped-call]
            self._file = file
        except OSError as error:
            _process.degrade(error)

    def detach(self) -> None:
        self._file = None

    def _store(self) -> None:
        if self._file is not None:
            try:
                self._file.write_value(self._key, self._value, self._timestamp)  # type: ignore[no-untyped-call]
            except OSError as error:
                _process.degrade(error)

    def inc(self, amount: float) -> None:
        with _process.lock:
            self._value += amount
            self._timestamp = 0.0
            self._store()

    def set(self, value: float, timestamp: float | None = None) -> None:
        with _process.lock:
            self._value = value
            self._timestamp = timestamp or 0.0
            self._store()

    def set_exemplar(self, exemplar: Any) -> None:
        return  # prometheus-client has no exemplars in multiprocess mode either

    def get(self) -> float:
        with _process.lock:
            return self._value

    def get_exemplar(self) -> None:
        return None


def install() -> None:
    """Use ResilientValue for every metric made from now on, in multiprocess mode only."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        values.ValueClass = ResilientValue
