"""A provisioned test host: runs the entry point as Pulumi does, and opens SSH tunnels to it.

Every run gets the host's storage options as the Pulumi program gives them for the VM: its data
disk (when the host has one) and a backup target (a folder on the host stands in for a bucket).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from config.stack_layout import DATA_DISK_DEVICE_PATH
from tests.support import testhost
from tests.support.processes import free_port
from tests.support.testhost import DEPLOY_USER, TestHost

MLFLOW_PASSWORD = "e2e-mlflow-" + os.urandom(8).hex()
GRAFANA_PASSWORD = "e2e-grafana-" + os.urandom(8).hex()
# TEST ONLY: the backup target, a folder on the host instead of a bucket (no GCS here).
BACKUP_DIR = "/var/backups/mlops-e2e"


@dataclass(frozen=True)
class ProvisionRun:
    returncode: int
    output: str
    seconds: float


@dataclass
class ProvisionedHost:
    host: TestHost
    env: dict[str, str]
    key_file: Path
    known_hosts: Path
    first_run: ProvisionRun
    # The deploy key's public half, for a replacement host.
    authorized_key: str = ""

    def provision(self) -> ProvisionRun:
        return run_entry_point(self.host, self.env)

    def replace_host(self, name: str) -> ProvisionRun:
        """A new VM with the old one's data disk: stop and remove the host, boot a fresh one with
        the same disk, and provision it (its new host key pinned, as the Pulumi program reads it)."""
        assert self.host.data_device, "only a host with a data disk can be replaced keeping its data"
        self.host.stop()
        self.host.remove()
        self.host = TestHost.start(name, self.authorized_key, data_device=self.host.data_device)
        self.env = {**self.env, "MLOPS_SSH_HOST_KEY": self.host.host_key()}
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.host.ssh_port} {self.host.host_key()}\n", encoding="utf-8"
        )
        return self.provision()

    @contextmanager
    def tunnel(self, remote_port: int) -> Iterator[int]:
        """An SSH tunnel to a port bound on the host's loopback, as users reach MLflow/Prometheus."""
        local_port = free_port()
        process = subprocess.Popen(
            [
                "ssh",
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-i",
                str(self.key_file),
                "-p",
                str(self.host.ssh_port),
                "-L",
                f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}",
                f"{DEPLOY_USER}@127.0.0.1",
            ],
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", local_port)) == 0:
                        break
                if process.poll() is not None:
                    raise RuntimeError(
                        f"ssh tunnel failed: {process.stderr.read() if process.stderr else ''!r}"
                    )
                time.sleep(0.3)
            yield local_port
        finally:
            process.terminate()
            process.wait(timeout=10)


def storage_options(host: TestHost) -> list[str]:
    """What the Pulumi program passes for the VM's data disk and its backup bucket."""
    disk = ["--data-disk-device", DATA_DISK_DEVICE_PATH] if host.data_device else []
    return [*disk, "--backup-target", BACKUP_DIR]


def run_entry_point(host: TestHost, env: dict[str, str], extra: Sequence[str] = ()) -> ProvisionRun:
    """Exactly the command stacks/provisioning.py gives `local.Command`, plus `--without grafana`."""
    command = [
        sys.executable, "-m", "stacks.provision",
        "--host", "127.0.0.1", "--port", str(host.ssh_port), "--user", DEPLOY_USER,
        "--timeout", "1200",
        # No Grafana image can be had on this machine (see test_grafana_is_provisioned_from_files).
        "--without", "grafana", *storage_options(host), *extra,
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=testhost.REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=1500
    )
    return ProvisionRun(result.returncode, result.stdout + result.stderr, time.monotonic() - started)
