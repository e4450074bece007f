"""Watch the entry point's private data dirs while a run goes on, for any secret in any file.

ansible-runner writes its artifacts (the command it ran, its environment, events, stdout) under
the run's private data dir in the system's temp folder. A run killed half-way leaves that folder
behind, so no file in it may ever hold a secret, at any moment of the run.
"""

from __future__ import annotations

import stat
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PRIVATE_DIR_PATTERN = "mlops-provision-*"


@dataclass
class SecretScan:
    """Scans every regular file under the run's dirs until stopped; FIFOs are never opened."""

    secrets: Iterable[str]
    root: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    findings: list[str] = field(default_factory=list)
    # Paths of ansible-runner's `command` artifacts seen: proof that scans overlapped the run.
    command_files: set[str] = field(default_factory=set)
    scans: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SecretScan:
        self._needles = [value.strip().encode() for value in self.secrets if value.strip()]
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for directory in self.root.glob(PRIVATE_DIR_PATTERN):
                self._scan(directory)
            self.scans += 1
            self._stop.wait(0.05)

    def _scan(self, directory: Path) -> None:
        for path in directory.rglob("*"):
            try:
                if not stat.S_ISREG(path.lstat().st_mode):
                    continue  # the SSH key's FIFO: reading it would steal the key from ssh-add
                content = path.read_bytes()
            except OSError:
                continue  # removed between listing and reading
            if path.name == "command":
                self.command_files.add(str(path))
            finding = f"{path} holds a secret"
            if finding not in self.findings and any(needle in content for needle in self._needles):
                self.findings.append(finding)
