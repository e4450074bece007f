"""Let's Encrypt's test ACME server (Debian's pebble) and its DNS stand-in, on loopback.

pebble validates HTTP-01 challenges by connecting to the name's A record on `http_port`; the DNS
server it asks (pebble-challtestsrv) answers every A query with 127.0.0.1, so any test domain
points at this machine, where the edge answers on that port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.edge import self_signed_certificate
from tests.support.processes import free_port, wait_until_answering


@dataclass(frozen=True)
class Acme:
    directory_url: str
    tls_certificate: Path  # pebble's own HTTPS certificate, for the ACME client to trust
    management_url: str

    def root_certificate(self, path: Path) -> Path:
        """The root that signs the certificates pebble issues (a new one at every start)."""
        pem = requests.get(
            f"{self.management_url}/roots/0", verify=str(self.tls_certificate), timeout=10
        ).text
        path.write_text(pem, encoding="utf-8")
        return path


def _binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: run `make system-deps` (Debian package pebble)"
    return path


@contextmanager
def _process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def running_acme(
    http_port: int, root: Path, listen: str = "127.0.0.1", names_resolve_to: str = "127.0.0.1"
) -> Iterator[Acme]:
    """pebble on `listen`, issuing for any name, validating HTTP-01 on `names_resolve_to`:`http_port`."""
    root.mkdir(parents=True, exist_ok=True)
    self_signed_certificate(root / "tls", address=listen)
    dns_port, acme_port, management_port = free_port(), free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"{listen}:{acme_port}",
            "managementListenAddress": f"{listen}:{management_port}",
            "certificate": str(root / "tls" / "fullchain.pem"),
            "privateKey": str(root / "tls" / "privkey.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (root / "pebble.json").write_text(json.dumps(config), encoding="utf-8")
    dns = [
        _binary("pebble-challtestsrv"), "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
        "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}",
        "-defaultIPv4", names_resolve_to, "-defaultIPv6", "",
    ]  # fmt: skip
    # No random validation delays, and no valid nonce refused on purpose: the test is about the flow.
    env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"}
    pebble = [_binary("pebble"), "-config", str(root / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"]
    with ExitStack() as stack:
        stack.enter_context(_process(dns, root / "challtestsrv.log"))
        process = stack.enter_context(_process(pebble, root / "pebble.log", env))
        acme = Acme(
            f"https://{listen}:{acme_port}/dir",
            root / "tls" / "fullchain.pem",
            f"https://{listen}:{management_port}",
        )
        wait_until_answering(
            "pebble", acme.directory_url, str(acme.tls_certificate), process, root / "pebble.log"
        )
        yield acme
