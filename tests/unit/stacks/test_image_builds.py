"""Images for the VM are built for its platform, whatever this machine's CPU."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from config.stack_layout import HOST_PLATFORM
from stacks import images


def test_images_for_the_vm_are_built_for_its_platform() -> None:
    command = images.build_command(images.OWN_IMAGES[0], HOST_PLATFORM)
    assert command[command.index("--platform") + 1] == HOST_PLATFORM == "linux/amd64"
    assert command[-1] == "."


def test_images_for_this_machine_are_built_for_its_own_cpu() -> None:
    assert "--platform" not in images.build_command(images.OWN_IMAGES[0], None)


def test_the_archive_for_a_host_builds_for_the_hosts_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    platforms: list[str | None] = []
    monkeypatch.setattr(images, "build", lambda image, log, platform=None: platforms.append(platform))
    monkeypatch.setattr(
        images, "save_archive", lambda names, cache_dir, log: images.ImageArchive(cache_dir, {})
    )
    monkeypatch.setattr(images, "image_id", lambda name: None)
    images.prepare_archive(lambda line: None)
    assert platforms == [HOST_PLATFORM] * len(images.OWN_IMAGES)


def test_a_recent_archive_of_another_run_is_kept_and_an_old_one_removed(tmp_path: Path) -> None:
    keep = tmp_path / "stack-images-aaaa.tar.gz"
    other_run = tmp_path / "stack-images-bbbb.tar.gz"
    old = tmp_path / "stack-images-cccc.tar.gz"
    abandoned = tmp_path / "stack-images-dddd.tar.gz.x1.partial"
    for path in (keep, other_run, old, abandoned):
        path.write_bytes(b"archive")
    long_ago = time.time() - 2 * images.STALE_ARCHIVE_AGE
    for path in (old, abandoned, keep):
        os.utime(path, (long_ago, long_ago))
    images.remove_stale_archives(tmp_path, keep=keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == [keep.name, other_run.name]
