"""Images for the VM are built for its platform, whatever this machine's CPU."""

from __future__ import annotations

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
