"""A deterministic fingerprint of the files provisioning ships to the VM.

It is a `triggers` entry of the provisioning command: any change in these folders re-provisions,
and an unchanged tree leaves the command alone. Walk order, timestamps and caches do not count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

# Everything the VM's stack is built from: roles, the API source, settings, dashboards, the
# compose file and image recipes (deploy/), and the dependency pins the images install.
PROVISIONING_INPUTS = (
    "playbooks",
    "app",
    "config",
    "dashboards",
    "deploy",
    "constraints.txt",
    "pyproject.toml",
)
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})


def _files_under(root: Path, folder: str) -> Iterator[Path]:
    """Files under `folder`, or `folder` itself when it names a file."""
    base = root / folder
    if base.is_file():
        yield base
        return
    if not base.is_dir():
        return
    for path in base.rglob("*"):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in relative.parts) or path.suffix in _SKIPPED_SUFFIXES:
            continue
        if path.is_file():
            yield path


def content_hash(root: Path, folders: Iterable[str] = PROVISIONING_INPUTS) -> str:
    """sha256 over sorted relative paths and contents; a missing folder simply adds nothing."""
    digest = hashlib.sha256()
    files = sorted(
        (path for folder in sorted(set(folders)) for path in _files_under(root, folder)),
        key=lambda path: path.relative_to(root).as_posix(),
    )
    for path in files:
        content = path.read_bytes()
        # Length-prefixed fields: moving bytes between a name and a content changes the hash.
        name = path.relative_to(root).as_posix().encode()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()
