"""The local copy of registry model versions: `<cache>/<name>/<version>/`, never trusted as found.

The cache directory must be private (this user's, not writable by group or others): anyone who
can write there could swap the files between the check and the load. Every use of a cached
version checks it first (`check` returns its problems); a copy that fails is replaced by a fresh
download, once, and a download that fails the check too is refused (FastModelMismatch).

Downloads go to a temporary directory beside the target and are renamed into place only once
they pass the check, so no process ever sees half a version. Workers may race: the first rename
wins, the others discard their copy and use the winner's (checked again).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.model.fast_model import FastModelError, FastModelMismatch

log = logging.getLogger(__name__)

PRIVATE_MODE = 0o700

Check = Callable[[Path], list[str]]  # a version directory -> its problems (empty: usable)
Download = Callable[[Path], None]  # fill a fresh, empty directory with the version's files


class ModelCacheUnsafe(FastModelError):
    """The cache directory is not private to this user, so nothing in it can be trusted."""


def private_dir(path: Path) -> Path:
    """`path`, created 0700 if missing; refused if another user owns it or others may write to it."""
    path.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise ModelCacheUnsafe(
            f"refusing model cache {path}: owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); set MLOPS_MODEL_CACHE_DIR to a directory of your own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ModelCacheUnsafe(
            f"refusing model cache {path}: writable by group or others "
            f"(mode {stat.filemode(info.st_mode)}); run `chmod 700 {path}` or set MLOPS_MODEL_CACHE_DIR"
        )
    return path


def discard(directory: Path) -> None:
    """Move `directory` out of the way atomically, then delete it (another worker may do the same)."""
    trash = Path(tempfile.mkdtemp(prefix=f".discard-{directory.name}-", dir=directory.parent))
    with contextlib.suppress(FileNotFoundError):  # another worker moved it first
        directory.rename(trash / directory.name)
    shutil.rmtree(trash, ignore_errors=True)


def _download_checked(target: Path, check: Check, download: Download) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        download(staging)
        problems = check(staging)
        if problems:
            raise FastModelMismatch(f"{target.name} as downloaded fails its check: " + "; ".join(problems))
        try:
            staging.rename(target)
        except OSError:  # another worker renamed its copy first: use that one, checked like any other
            problems = check(target)
            if problems:
                raise FastModelMismatch(f"{target} fails its check: " + "; ".join(problems)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def cached_version(cache_dir: Path, name: str, version: str, check: Check, download: Download) -> Path:
    """The directory of name/version in the cache, passing `check`; downloaded again (once) if not."""
    parent = private_dir(private_dir(cache_dir) / name)
    target = parent / version
    if target.is_dir():
        problems = check(target)
        if not problems:
            return target
        log.warning(
            "cached model %s version %s at %s fails its check (%s); downloading it again",
            name,
            version,
            target,
            "; ".join(problems),
        )
        discard(target)
    return _download_checked(target, check, download)
