"""scripts/install-system-deps.sh asks apt for the right packages on Debian and on Ubuntu 24.04
(GitHub's runners); apt, dpkg and docker are stand-ins that log what they are asked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install-system-deps.sh"
STAND_INS = {
    # Nothing is installed: every package is missing.
    "dpkg-query": "exit 1",
    "apt-get": 'echo "$*" >> "$APT_LOG"',
    "docker": "exit 0",
}


def requested_packages(tmp_path: Path, os_id: str, with_docker: bool) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STAND_INS.items():
        if name == "docker" and not with_docker:
            continue
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    # Only these real tools: a real docker elsewhere on PATH must not be found.
    for tool in ("grep", "id", "ln"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    os_release = tmp_path / "os-release"
    os_release.write_text(f"ID={os_id}\n")
    log = tmp_path / "apt.log"
    env = {
        "PATH": str(bin_dir),
        "APT_LOG": str(log),
        "OS_RELEASE_FILE": str(os_release),
        "CHROMEWEBDRIVER": str(tmp_path / "no-driver"),
        "HOME": os.environ.get("HOME", "/root"),
    }
    # Run as the current user; sudo is only prefixed for non-root, so it is stubbed too.
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    install = next(line for line in log.read_text().splitlines() if line.startswith("install"))
    return [word for word in install.split() if not word.startswith("-") and word != "install"]


def test_debian_gets_chromium_and_nginx_light(tmp_path: Path) -> None:
    packages = requested_packages(tmp_path, "debian", with_docker=False)
    assert {"chromium", "chromium-driver", "nginx-light", "docker.io", "debootstrap"} <= set(packages)


def test_ubuntu_skips_the_chromium_snap_and_a_second_docker(tmp_path: Path) -> None:
    packages = requested_packages(tmp_path, "ubuntu", with_docker=True)
    assert not {"chromium", "chromium-driver", "docker.io", "nginx-light"} & set(packages)
    assert {"nginx", "debian-archive-keyring", "debootstrap", "prometheus", "pebble"} <= set(packages)


@pytest.mark.parametrize("with_docker", [True, False])
def test_ubuntu_installs_docker_only_when_none_is_there(tmp_path: Path, with_docker: bool) -> None:
    packages = requested_packages(tmp_path, "ubuntu", with_docker=with_docker)
    assert ("docker.io" in packages) is not with_docker
