"""The local test host that plays the GCP VM: a Debian 13 container booting systemd with sshd.

Everything is built here from local material (no registry pulls): a debootstrap base image, the
test host image on top of it, and - for the test only - Prometheus, Alertmanager and node-exporter
images from Debian's packages standing in for the catalog's `prom/...` ones. Images are cached by
tag between runs; the host
container is fresh for every run and removed afterwards.

The VM's persistent data disk is played by a loop device over a sparse file on this machine
(LoopDisk), passed into the container and named like GCE names it (/dev/disk/by-id/google-...):
the docker role formats it once and mounts it, and Docker's data root lives on it. It outlives a
host container, as the real disk outlives a replaced VM. Without a disk, a Docker volume is
mounted at the data mount point instead (Docker's data root cannot live on the container's own
overlay filesystem).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from config import edge
from config import stack_layout as layout
from config.alertmanager import ALERTMANAGER_CONTAINER_DATA_DIR
from config.services import SERVICES, Service
from tests.support.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# BuildKit (for the CA secret) comes with Debian's client; the newer client on PATH has no buildx.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TRIXIE_BASE = "mlops-platform/debian:trixie"
# The Python base for the repo's own images where python:3.11-slim cannot be pulled.
PYTHON_BASE = "mlops-platform/python:3.11-bookworm"
TESTHOST_IMAGE = "mlops-platform/e2e-testhost:trixie"
DEPLOY_USER = "deploy"

# systemd needs the host's cgroups, and the
# inner Docker needs systempaths unconfined; --privileged fails here ("unable to apply caps").
SYSTEMD_FLAGS = [
    "--cgroupns=host",
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
]  # fmt: skip


def docker(*args: str, check: bool = True, input_text: str | None = None) -> str:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False, input=input_text)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


def image_exists(name: str) -> bool:
    return (
        subprocess.run([DOCKER, "image", "inspect", name], capture_output=True, check=False).returncode == 0
    )


def build_base_images() -> None:
    """debootstrap bases, cached by tag (scripts/build-base-image.sh skips existing tags)."""
    script = str(REPO_ROOT / "scripts" / "build-base-image.sh")
    env = dict(os.environ, DOCKER=DOCKER)
    subprocess.run([script, "trixie", TRIXIE_BASE], check=True, env=env)
    subprocess.run(
        [script, "bookworm", PYTHON_BASE, "python3", "python3-venv", "ca-certificates"], check=True, env=env
    )


def build_testhost_image() -> None:
    if not image_exists(TESTHOST_IMAGE):
        docker("build", "-q", "--build-arg", f"BASE_IMAGE={TRIXIE_BASE}", "-t", TESTHOST_IMAGE,
               str(HERE / "testhost_image"))  # fmt: skip


def _build_stand_in(service: Service, context: str, build_args: dict[str, str]) -> str:
    """TEST ONLY: an image from Debian's package tagged with the catalog's pinned name (no pulls
    here), built once and cached by that tag."""
    if not image_exists(service.image):
        args = [
            f"--build-arg={name}={value}" for name, value in {"BASE_IMAGE": TRIXIE_BASE, **build_args}.items()
        ]
        docker("build", "-q", *args, "-t", service.image, str(HERE / context))
    return service.image


def build_test_prometheus_image() -> str:
    """TEST ONLY: Debian's Prometheus standing in for the catalog's `prom/prometheus`."""
    prometheus = SERVICES.prometheus
    return _build_stand_in(
        prometheus,
        "prometheus_image",
        {"PROMETHEUS_UID": str(prometheus.uid), "PROMETHEUS_PORT": str(prometheus.port)},
    )


def _debian_service_args(service: Service, package: str, data_dir: str = "-") -> dict[str, str]:
    return {
        "PACKAGE": package,
        "BINARY": f"/usr/bin/{package}",
        "SERVICE_UID": str(service.uid),
        "SERVICE_PORT": str(service.port),
        "DATA_DIR": data_dir,
    }


def build_test_alertmanager_image() -> str:
    """TEST ONLY: Debian's Alertmanager standing in for the catalog's `prom/alertmanager`."""
    service = SERVICES.alertmanager
    args = _debian_service_args(service, "prometheus-alertmanager", ALERTMANAGER_CONTAINER_DATA_DIR)
    return _build_stand_in(service, "debian_service_image", args)


def build_test_node_exporter_image() -> str:
    """TEST ONLY: Debian's node-exporter standing in for the catalog's `prom/node-exporter`."""
    service = SERVICES.node_exporter
    return _build_stand_in(
        service, "debian_service_image", _debian_service_args(service, "prometheus-node-exporter")
    )


@dataclass(frozen=True)
class LoopDisk:
    """TEST ONLY: a loop device over a sparse file on this machine plays the VM's data disk."""

    image: Path
    device: str

    @classmethod
    def create(cls, image: Path, size: str = "16G") -> LoopDisk:
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
        result = subprocess.run(
            ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            image.unlink()
            raise RuntimeError(f"no loop device for the test host's data disk: {result.stderr.strip()}")
        return cls(image, result.stdout.strip())

    def detach(self) -> None:
        subprocess.run(["losetup", "--detach", self.device], check=False)
        self.image.unlink(missing_ok=True)


@dataclass
class TestHost:
    """One running test host container, its published ports and its data disk or data volume."""

    name: str
    # The data disk (a loop device), or else a Docker volume at the data mount point.
    data_device: str | None
    volume: str | None
    ssh_port: int
    # The edge's HTTPS and HTTP ports on the host, published on this machine's loopback.
    https_port: int
    http_port: int

    @classmethod
    def start(cls, name: str, authorized_key: str, data_device: str | None = None) -> TestHost:
        volume = None if data_device else f"{name}-data"
        storage = (
            ["--device", data_device] if data_device else ["-v", f"{volume}:{layout.DATA_DISK_MOUNT_POINT}"]
        )
        ssh_port, https_port, http_port = free_port(), free_port(), free_port()
        docker("run", "-d", "--name", name, "--hostname", name, *SYSTEMD_FLAGS, *storage,
               # Only loopback of this machine: SSH and the edge's ports, as the firewall opens them.
               "-p", f"127.0.0.1:{ssh_port}:22",
               "-p", f"127.0.0.1:{https_port}:{edge.PUBLIC_HTTPS_PORT}",
               "-p", f"127.0.0.1:{http_port}:{edge.PUBLIC_HTTP_PORT}",
               TESTHOST_IMAGE)  # fmt: skip
        host = cls(name, data_device, volume, ssh_port, https_port, http_port)
        host.wait_for_systemd()
        if data_device:
            # What GCE's udev rule does for an attached disk: its stable name by device name.
            host.exec("mkdir", "-p", str(Path(layout.DATA_DISK_DEVICE_PATH).parent))
            host.exec("ln", "-sfn", data_device, layout.DATA_DISK_DEVICE_PATH)
        host.exec(
            "install", "-m", "0600", "-o", DEPLOY_USER, "-g", DEPLOY_USER, "/dev/stdin",
            f"/home/{DEPLOY_USER}/.ssh/authorized_keys", input_text=authorized_key,
        )  # fmt: skip
        host.wait_for_ssh()
        return host

    def exec(self, *command: str, check: bool = True, input_text: str | None = None) -> str:
        flags = ["-i"] if input_text is not None else []
        return docker("exec", *flags, self.name, *command, check=check, input_text=input_text)

    def wait_for_systemd(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.exec("systemctl", "is-system-running", check=False)
            if state in ("running", "degraded"):
                return
            time.sleep(1)
        raise RuntimeError(f"systemd in {self.name} did not finish booting (state {state!r})")

    def wait_for_ssh(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(2)
                try:
                    sock.connect(("127.0.0.1", self.ssh_port))
                    if sock.recv(4).startswith(b"SSH-"):
                        return
                except OSError:
                    pass
            time.sleep(1)
        raise RuntimeError(f"sshd in {self.name} does not answer on port {self.ssh_port}")

    def host_key(self) -> str:
        """The ED25519 host key as `type base64`, as the Pulumi program reads it from the VM."""
        fields = self.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()
        return f"{fields[0]} {fields[1]}"

    def inner_docker(self, *args: str, check: bool = True) -> str:
        return self.exec("docker", *args, check=check)

    def address(self) -> str:
        """The host's address on this machine's Docker network (where the "internet" reaches it)."""
        return docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", self.name)

    def gateway(self) -> str:
        """This machine's address as the host sees it (a server here listens on it for the host)."""
        return docker("inspect", "--format", "{{.NetworkSettings.Gateway}}", self.name)

    def edge_certificate(self, directory: Path) -> Path:
        """The certificate the edge made on the host, to verify its TLS against (it is self-signed)."""
        path = directory / "edge.pem"
        path.write_text(
            self.inner_docker("exec", "mlops-edge-1", "cat", f"{edge.CERT_DIR}/fullchain.pem") + "\n"
        )
        return path

    def stop(self, timeout: int = 90) -> None:
        """Shut the host down as a VM is stopped: systemd stops Docker and unmounts the data disk."""
        docker("stop", "--time", str(timeout), self.name, check=False)

    def remove(self) -> None:
        """Remove the container and its data volume; a data disk stays (the caller owns it)."""
        docker("rm", "-f", "-v", self.name, check=False)
        if self.volume:
            docker("volume", "rm", "-f", self.volume, check=False)


def default_bridge_gateway() -> str:
    """This machine's address on Docker's default bridge, where a test host (started on that
    bridge) reaches a server of this machine; TestHost.gateway() is the same address."""
    return docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", "bridge")


def generate_ssh_key(directory: Path) -> tuple[str, str]:
    """(private key, public key) of a fresh ED25519 deploy key, as pulumi-tls would make."""
    path = directory / "deploy_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-deploy", "-f", str(path)], check=True
    )
    return path.read_text(encoding="utf-8"), path.with_suffix(".pub").read_text(encoding="utf-8")
