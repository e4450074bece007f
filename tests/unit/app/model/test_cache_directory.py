"""The model cache: a private directory whose versions are checked, replaced and renamed atomically."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from app.model.fast_model import FastModelMismatch
from app.model.model_cache import ModelCacheUnsafe, cached_version, private_dir

GOOD = b"the registered bytes"


def good_download(destination: Path) -> None:
    (destination / "file").write_bytes(GOOD)


def check(directory: Path) -> list[str]:
    path = directory / "file"
    if not path.is_file():
        return ["file is missing"]
    return [] if path.read_bytes() == GOOD else ["file differs"]


def leftovers(parent: Path) -> list[str]:
    return sorted(entry.name for entry in parent.iterdir() if entry.name.startswith("."))


def test_the_cache_is_created_private(tmp_path: Path) -> None:
    cache = private_dir(tmp_path / "cache")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_cache_others_can_write_to_is_refused(tmp_path: Path, mode: int) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(mode)
    with pytest.raises(ModelCacheUnsafe, match="writable by group or others"):
        private_dir(cache)


def test_a_cache_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    someone_else = os.geteuid() + 1
    monkeypatch.setattr(os, "geteuid", lambda: someone_else)
    with pytest.raises(ModelCacheUnsafe, match="not by this user"):
        private_dir(cache)


def test_a_missing_version_is_downloaded_and_renamed_into_place(tmp_path: Path) -> None:
    directory = cached_version(tmp_path / "cache", "model", "1", check, good_download)
    assert directory == tmp_path / "cache" / "model" / "1"
    assert (directory / "file").read_bytes() == GOOD
    assert stat.S_IMODE((tmp_path / "cache" / "model").stat().st_mode) == 0o700
    assert leftovers(directory.parent) == []  # no staging directory left behind


def test_a_changed_copy_is_replaced_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = cached_version(tmp_path / "cache", "model", "1", check, good_download)
    (directory / "file").write_bytes(b"planted")
    with caplog.at_level(logging.WARNING, logger="app.model.model_cache"):
        again = cached_version(tmp_path / "cache", "model", "1", check, good_download)
    assert (again / "file").read_bytes() == GOOD
    assert "fails its check (file differs); downloading it again" in caplog.text
    assert leftovers(again.parent) == []


def test_a_download_that_fails_its_check_is_refused_and_not_kept(tmp_path: Path) -> None:
    def bad_download(destination: Path) -> None:
        (destination / "file").write_bytes(b"corrupt")

    with pytest.raises(FastModelMismatch, match="as downloaded fails its check: file differs"):
        cached_version(tmp_path / "cache", "model", "1", check, bad_download)
    assert list((tmp_path / "cache" / "model").iterdir()) == []


def test_the_loser_of_a_download_race_uses_the_winners_copy(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model" / "1"

    def racing_download(destination: Path) -> None:
        good_download(destination)
        target.mkdir()  # another worker renames its checked copy into place meanwhile
        (target / "file").write_bytes(GOOD)
        (target / "winner").touch()

    directory = cached_version(tmp_path / "cache", "model", "1", check, racing_download)
    assert (directory / "winner").exists()
    assert leftovers(directory.parent) == []  # the loser's copy is gone
