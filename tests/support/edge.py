"""The edge proxy (Debian's nginx) on loopback, with the stack's rendered nginx.conf, in front of an API."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from stacks.edge_config import EdgeLayout, grafana_location, render
from tests.support.processes import free_port, wait_until_answering


@dataclass(frozen=True)
class Edge:
    http_url: str
    https_url: str
    ca_file: Path  # the self-signed certificate the edge serves, to verify TLS against
    process: subprocess.Popen[bytes]
    log_path: Path
    cert_dir: Path
    acme_webroot: Path

    @property
    def http_port(self) -> int:
        return int(self.http_url.rsplit(":", 1)[1])

    @property
    def https_port(self) -> int:
        return int(self.https_url.rsplit(":", 1)[1])

    def reload(self) -> None:
        """Re-read the configuration and the certificate files, as `nginx -s reload` does."""
        self.process.send_signal(signal.SIGHUP)


def nginx_path() -> str:
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(path).exists(), "nginx is missing: run `make system-deps` (Debian package nginx-light)"
    return path


def self_signed_certificate(directory: Path, name: str = "localhost", address: str = "127.0.0.1") -> None:
    """fullchain.pem and privkey.pem for `name` and `address`, as the edge expects them."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:{address}",
         "-keyout", str(directory / "privkey.pem"), "-out", str(directory / "fullchain.pem")],
        check=True, capture_output=True,
    )  # fmt: skip


@contextmanager
def running_edge(upstream: str, root: Path, grafana_upstream: str | None = None) -> Iterator[Edge]:
    """nginx with the rendered config, listening on free loopback ports, proxying to `upstream`;
    with `grafana_upstream`, Grafana's location is enabled as the entrypoint does it."""
    certs, runtime = root / "certs", root / "run"
    # nginx's workers (not root) serve the ACME webroot: outside pytest's private (0700) folders.
    webroot = Path(tempfile.mkdtemp(prefix="edge-acme-"))
    webroot.chmod(0o755)
    self_signed_certificate(certs)
    runtime.mkdir(parents=True, exist_ok=True)
    layout = EdgeLayout(
        upstream=upstream,
        http_port=free_port(),
        https_port=free_port(),
        cert_dir=str(certs),
        acme_webroot=str(webroot),
        runtime_dir=str(runtime),
        resolver=None,
        bind="127.0.0.1",
    )
    if grafana_upstream:
        layout = replace(layout, grafana_upstream=grafana_upstream)
        (runtime / "locations").mkdir()
        (runtime / "locations" / "grafana.conf").write_text(grafana_location(layout), encoding="utf-8")
    conf = root / "nginx.conf"
    conf.write_text(render(layout), encoding="utf-8")
    log = (root / "nginx.log").open("wb")
    process = subprocess.Popen(
        [nginx_path(), "-c", str(conf), "-p", str(root), "-g", "daemon off;"], stdout=log, stderr=log
    )
    edge = Edge(
        f"http://127.0.0.1:{layout.http_port}",
        f"https://127.0.0.1:{layout.https_port}",
        certs / "fullchain.pem",
        process,
        root / "nginx.log",
        certs,
        Path(layout.acme_webroot),
    )
    try:
        wait_until_answering(
            "nginx", f"{edge.https_url}/health", str(edge.ca_file), process, root / "nginx.log"
        )
        yield edge
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(webroot, ignore_errors=True)
