"""A local image registry (Debian's `docker-registry`, CNCF Distribution) standing in for Artifact
Registry, and pushing this machine's images to it.

Plain HTTP on loopback serves this machine's Docker alone (it treats 127.0.0.0/8 registries as
insecure). A registry another Docker pulls from (the test host's) serves TLS with a certificate a
test CA signs for the addresses given: that Docker trusts the CA from
`/etc/docker/certs.d/HOST:PORT/ca.crt`, so no production setting has to allow an insecure registry.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import free_port

REGISTRY_SERVER = Path("/usr/bin/docker-registry")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Registry:
    port: int
    ca_file: Path | None  # the CA that signed the registry's TLS certificate; None: plain HTTP

    @property
    def push_host(self) -> str:
        """Where this machine's Docker pushes (loopback: no certificate needed)."""
        return f"{LOOPBACK}:{self.port}"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _certificate(
    subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey, signer: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def issue_tls_certificate(directory: Path, addresses: Sequence[str]) -> Path:
    """A test CA (ca.crt) and a server certificate it signs for `addresses` as IP SANs
    (server.crt, server.key). Returns the CA's path."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("mlops test registry CA", "mlops test registry CA", ca_key.public_key(), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    server = (
        _certificate("mlops test registry", "mlops test registry CA", server_key.public_key(), ca_key)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, directory / "server.key")
    return directory / "ca.crt"


@contextmanager
def running_registry(root: Path, tls_addresses: Sequence[str] = ()) -> Iterator[Registry]:
    """A registry storing under `root`. Without `tls_addresses`: plain HTTP on loopback only. With
    them: TLS for those addresses (and loopback), listening on all interfaces so they reach it."""
    port = free_port()
    http: dict[str, object] = {"addr": f"{LOOPBACK}:{port}"}
    ca_file = None
    if tls_addresses:
        ca_file = issue_tls_certificate(root / "tls", [LOOPBACK, *tls_addresses])
        http = {
            "addr": f"0.0.0.0:{port}",
            "tls": {"certificate": str(root / "tls/server.crt"), "key": str(root / "tls/server.key")},
        }
    config = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(root / "data")}}, "http": http}
    (root / "config.yml").write_text(yaml.safe_dump(config))
    server = subprocess.Popen(
        [str(REGISTRY_SERVER), "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    registry = Registry(port, ca_file)
    try:
        _wait_until_serving(registry)
        yield registry
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_until_serving(registry: Registry) -> None:
    scheme = "https" if registry.ca_file else "http"
    url = f"{scheme}://{registry.push_host}/v2/"
    verify: str | bool = str(registry.ca_file) if registry.ca_file else True
    for _ in range(100):
        try:
            if requests.get(url, timeout=1, verify=verify).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"the registry never answered on {url}")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def push(image: str, registry: Registry, repository: str) -> str:
    """Push a local image to `registry` as `repository` and forget the pushed tag and digest
    reference (the image stays under its local name). Returns the pushed digest, `sha256:...`."""
    target = f"{registry.push_host}/{repository}"
    docker("tag", image, f"{target}:release")
    docker("push", "--quiet", f"{target}:release")
    digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", image))
    reference = str(next(digest for digest in digests if digest.startswith(f"{target}@sha256:")))
    docker("image", "rm", f"{target}:release")
    subprocess.run(["docker", "image", "rm", reference], capture_output=True, check=False)
    return reference.split("@", 1)[1]
