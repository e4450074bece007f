"""Start the edge: make sure a certificate exists, enable the optional locations, then run nginx.

Environment (set by the compose file from the stack's `.env`):
  EDGE_SERVER_NAME  the name or IP address clients use; the self-signed certificate names it.
  EDGE_GRAFANA      "1" when the stack makes Grafana public: serve it under its sub-path.
Paths come from the build (EDGE_* build args, config/edge.py).

Without a certificate in the certificate volume, a self-signed one is made here, on the host: its
private key never leaves the volume. nginx then runs as PID 1 (SIGQUIT: graceful stop).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path

CERT_DIR = Path(os.environ["EDGE_CERT_DIR"])
RUNTIME_DIR = Path(os.environ["EDGE_RUNTIME_DIR"])
CONFIG_FILE = os.environ["EDGE_CONFIG_FILE"]
GRAFANA_LOCATION = Path(os.environ["EDGE_GRAFANA_LOCATION"])


def say(message: str) -> None:
    print(f"edge-entrypoint: {message}", file=sys.stderr, flush=True)


def subject_alt_name(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name}"


def ensure_certificate(name: str) -> None:
    chain, key = CERT_DIR / "fullchain.pem", CERT_DIR / "privkey.pem"
    if chain.is_file() and key.is_file():
        return
    say(f"no certificate yet: making a self-signed one for {name}")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "825", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={subject_alt_name(name)}",
         "-keyout", str(key), "-out", str(chain)],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)


def enable_locations() -> None:
    locations = RUNTIME_DIR / "locations"
    locations.mkdir(parents=True, exist_ok=True)
    if os.environ.get("EDGE_GRAFANA") == "1":
        shutil.copyfile(GRAFANA_LOCATION, locations / "grafana.conf")
        say("serving Grafana under its sub-path")


def main() -> None:
    name = os.environ.get("EDGE_SERVER_NAME", "").strip() or "localhost"
    ensure_certificate(name)
    enable_locations()
    os.execvp("nginx", ["nginx", "-e", "stderr", "-c", CONFIG_FILE, "-g", "daemon off;"])


if __name__ == "__main__":
    main()
