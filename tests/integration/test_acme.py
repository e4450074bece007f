"""A real ACME flow: the edge's certificate script gets a certificate from pebble over HTTP-01.

pebble (Let's Encrypt's test server) validates the challenge by asking the edge's HTTP port for
the token the script's certbot wrote into the webroot; the installed certificate is then served by
the edge over HTTPS, verified against pebble's root, while HTTP still redirects to HTTPS.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.acme import Acme, running_acme
from tests.support.edge import Edge, running_edge
from tests.support.processes import REPO, Server

DOMAIN = "api.mlops.test"
SCRIPT = REPO / "deploy" / "edge" / "certificates.py"


@pytest.fixture(scope="module")
def edge_and_acme(
    api_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Edge, Acme]]:
    root = tmp_path_factory.mktemp("acme")
    with running_edge(api_server.base_url.removeprefix("http://"), root / "edge") as edge:
        edge.acme_webroot.mkdir(parents=True, exist_ok=True)
        with running_acme(edge.http_port, root / "pebble") as acme:
            yield edge, acme


def certificates(edge: Edge, acme: Acme, state: Path, action: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EDGE_DOMAIN": DOMAIN,
        "EDGE_ACME_SERVER": acme.directory_url,
        "EDGE_ACME_EMAIL": "",
        "EDGE_ACME_WEBROOT": str(edge.acme_webroot),
        "EDGE_ACME_STATE": str(state),
        "EDGE_CERT_DIR": str(edge.cert_dir),
        # certbot talks to pebble's ACME endpoint over HTTPS: trust pebble's own certificate.
        "EDGE_ACME_CA_FILE": str(acme.tls_certificate),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def served_certificate(edge: Edge, root_ca: Path) -> Any:
    """The certificate the edge presents for DOMAIN, verified against `root_ca` (raises if not)."""
    context = ssl.create_default_context(cafile=str(root_ca))
    with (
        socket.create_connection(("127.0.0.1", edge.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=DOMAIN) as conn,
    ):
        certificate = conn.getpeercert() or {}
        request = f"GET /ready HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode()
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return certificate


def test_the_certificate_is_issued_over_http01_and_served_over_https(
    edge_and_acme: tuple[Edge, Acme], tmp_path: Path
) -> None:
    edge, acme = edge_and_acme
    root_ca = acme.root_certificate(tmp_path / "pebble-root.pem")
    # Before: the edge's self-signed certificate, which pebble's root does not vouch for.
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(edge, root_ca)

    done = certificates(edge, acme, tmp_path / "state", "obtain")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "installed the certificate" in done.stderr
    assert oct((edge.cert_dir / "privkey.pem").stat().st_mode & 0o777) == "0o600"
    edge.reload()
    deadline = time.monotonic() + 10
    while True:
        try:
            certificate = served_certificate(edge, root_ca)
            break
        except ssl.SSLCertVerificationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert ("DNS", DOMAIN) in certificate["subjectAltName"]

    redirect = requests.get(
        f"{edge.http_url}/predict", headers={"Host": DOMAIN}, allow_redirects=False, timeout=10
    )
    assert redirect.status_code == 308
    assert redirect.headers["Location"] == f"https://{DOMAIN}/predict"

    # A second run keeps the valid certificate (no new order) and reports success.
    again = certificates(edge, acme, tmp_path / "state", "obtain")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "installed" not in again.stderr
    renewed = certificates(edge, acme, tmp_path / "state", "renew")
    assert renewed.returncode == 0, renewed.stderr[-3000:]


def test_a_failed_challenge_installs_nothing_and_says_why(
    edge_and_acme: tuple[Edge, Acme], tmp_path: Path
) -> None:
    edge, acme = edge_and_acme
    before = (edge.cert_dir / "fullchain.pem").read_bytes()
    broken = Edge(**{**edge.__dict__, "acme_webroot": tmp_path / "not-served"})
    done = certificates(broken, acme, tmp_path / "state", "obtain")
    assert done.returncode == 1
    assert "certbot certonly failed" in done.stderr
    assert (edge.cert_dir / "fullchain.pem").read_bytes() == before
