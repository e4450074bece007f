"""The entry point's IAP SSH arguments against a real sshd on loopback, through Ansible's own ssh.

A stand-in `gcloud` on PATH plays `gcloud compute start-iap-tunnel ... --listen-on-stdin`: it
records its argv and relays stdin/stdout to the sshd. `--host` is a TEST-NET-3 address that
reaches nothing, so a command that answers proves the connection went through the ProxyCommand
(as Ansible split and ssh ran it), and that the host key pinned to that name was checked.
What stays untested here: IAP itself, gcloud's real tunnel and its authentication.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.provision import parse_args, ssh_inventory, write_known_hosts
from tests.support.processes import VENV_BIN, free_port

pytestmark = pytest.mark.integration

SSHD = Path("/usr/sbin/sshd")
UNREACHABLE_HOST = "203.0.113.5"
INSTANCE, PROJECT, ZONE = "mlops-prod-1a2b3c-vm", "my-project-1", "europe-west1-b"
ENTRY_POINT_ARGS = ["--host", UNREACHABLE_HOST, "--user", "root"]
IAP_ARGS = ["--via-iap", INSTANCE, "--project", PROJECT, "--zone", ZONE]

# The stand-in: check nothing, record argv, relay bytes both ways until either side closes.
FAKE_GCLOUD = """\
import json, os, socket, sys, threading
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sock = socket.create_connection(("127.0.0.1", int(os.environ["FAKE_IAP_PORT"])))
def upstream():
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    os.write(1, data)
"""


@dataclass
class Loopback:
    port: int
    host_public_key: str
    client_key: Path
    root: Path


def write_sshd_config(root: Path, port: int) -> Path:
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"PidFile {root / 'sshd.pid'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                # The temporary folder is world-traversable; the test's files are its own.
                "StrictModes no",
            ]
        )
        + "\n"
    )
    return config


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"sshd did not listen on {port} within {timeout} s")


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    if os.geteuid() != 0 or not SSHD.exists():
        pytest.fail("needs root and openssh-server (scripts/install-system-deps.sh)")
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True
        )
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    # sshd started as root insists on its privilege separation folder.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = write_sshd_config(tmp_path, port)
    sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, sshd)
        host_key = " ".join((tmp_path / "host_key.pub").read_text().split()[:2])
        yield Loopback(port, host_key, tmp_path / "client_key", tmp_path)
    finally:
        sshd.terminate()
        sshd.wait(10)


def run_ansible(
    loopback: Loopback, host_key: str, retries: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`ansible -m raw` with the entry point's inventory, as ansible-runner would run it."""
    root = loopback.root
    args = parse_args([*ENTRY_POINT_ARGS, *IAP_ARGS])
    known_hosts = root / "known_hosts"
    write_known_hosts(known_hosts, args.host, args.port, {"MLOPS_SSH_HOST_KEY": host_key})
    inventory = ssh_inventory(args, known_hosts)
    host = inventory["all"]["hosts"]["target"]
    host["ansible_ssh_private_key_file"] = str(loopback.client_key)
    if retries is not None:
        host["ansible_ssh_retries"] = retries
    (root / "inventory.json").write_text(json.dumps(inventory))
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    gcloud.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_IAP_PORT": str(loopback.port),
        "FAKE_GCLOUD_LOG": str(root / "gcloud.log"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(root / "cp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [
        "ansible",
        "all",
        "-i",
        str(root / "inventory.json"),
        "-m",
        "raw",
        "-a",
        "echo through-$((20+22))",
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def gcloud_calls(loopback: Loopback) -> list[list[str]]:
    log = loopback.root / "gcloud.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_ansible_reaches_the_host_only_through_the_iap_proxy_command(loopback: Loopback) -> None:
    result = run_ansible(loopback, loopback.host_public_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "through-42" in result.stdout
    calls = gcloud_calls(loopback)
    assert calls, "the ProxyCommand never ran"
    expected = ["compute", "start-iap-tunnel", INSTANCE, "22", "--listen-on-stdin"]
    assert all(call == [*expected, f"--project={PROJECT}", f"--zone={ZONE}"] for call in calls), calls


def test_a_host_key_other_than_the_pinned_one_is_refused_through_the_tunnel(loopback: Loopback) -> None:
    other = loopback.root / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    # No retries: a refused key is ssh's exit 255 too, which the IAP inventory would retry for minutes.
    result = run_ansible(loopback, wrong, retries=0)
    assert result.returncode != 0
    assert "UNREACHABLE" in result.stdout
    assert "Host key verification failed" in result.stdout + result.stderr
    assert "through-42" not in result.stdout
    assert gcloud_calls(loopback), "the refusal must come from the tunnelled sshd, not a failed dial"
