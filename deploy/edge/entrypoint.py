"""Start the edge: a certificate, the optional locations, then nginx; with a domain, ACME too.

Environment (set by the compose file from the stack's `.env`):
  EDGE_SERVER_NAME  the name or IP address clients use when there is no domain.
  EDGE_DOMAIN       a domain pointing at this host: its certificate comes from ACME (HTTP-01)
                    and is renewed here; until it is issued, a self-signed one stands in.
  EDGE_ACME_SERVER, EDGE_ACME_EMAIL   see certificates.py.
  EDGE_GRAFANA      "1" when the stack makes Grafana public: serve it under its sub-path.
Paths come from the build (EDGE_* build args, config/edge.py).

Without any certificate, a self-signed one is made here, on the host: its key never leaves the
certificate volume. nginx runs as this process's child; SIGTERM/SIGQUIT stop it gracefully.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

import certificates

CERT_DIR = Path(os.environ["EDGE_CERT_DIR"])
RUNTIME_DIR = Path(os.environ["EDGE_RUNTIME_DIR"])
CONFIG_FILE = os.environ["EDGE_CONFIG_FILE"]
GRAFANA_LOCATION = Path(os.environ["EDGE_GRAFANA_LOCATION"])
# certbot renews 30 days before expiry; asking twice a day is what Let's Encrypt recommends.
RENEW_EVERY_SECONDS = 12 * 3600
# A failed order (DNS not pointing here yet, a rate limit) is retried with a growing delay.
FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS = 60, 3600


def enable_locations() -> None:
    locations = RUNTIME_DIR / "locations"
    locations.mkdir(parents=True, exist_ok=True)
    if os.environ.get("EDGE_GRAFANA") == "1":
        shutil.copyfile(GRAFANA_LOCATION, locations / "grafana.conf")
        certificates.say("serving Grafana under its sub-path")


def manage_certificate(nginx: subprocess.Popen[bytes], stopped: threading.Event) -> None:
    """Obtain the domain's certificate, then renew it; reload nginx after each success."""
    env, issued, delay = dict(os.environ), False, FIRST_RETRY_SECONDS
    while not stopped.is_set():
        ok = certificates.renew(env) if issued else certificates.obtain(env)
        if ok:
            issued, delay = True, FIRST_RETRY_SECONDS
            nginx.send_signal(signal.SIGHUP)  # re-read the certificate files, gracefully
            stopped.wait(RENEW_EVERY_SECONDS)
        else:
            certificates.say(f"no certificate for {env['EDGE_DOMAIN']} yet; retrying in {delay} s")
            stopped.wait(delay)
            delay = min(delay * 2, LAST_RETRY_SECONDS)


def main() -> int:
    domain = os.environ.get("EDGE_DOMAIN", "").strip()
    name = domain or os.environ.get("EDGE_SERVER_NAME", "").strip() or "localhost"
    certificates.ensure_self_signed(CERT_DIR, name)
    enable_locations()
    nginx = subprocess.Popen(["nginx", "-e", "stderr", "-c", CONFIG_FILE, "-g", "daemon off;"])
    stopped = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopped.set()
        # SIGQUIT: finish the requests in flight, then exit.
        nginx.send_signal(signal.SIGQUIT if signum != signal.SIGINT else signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
        signal.signal(signum, stop)
    if domain:
        threading.Thread(target=manage_certificate, args=(nginx, stopped), daemon=True).start()
    code = nginx.wait()
    stopped.set()
    return code


if __name__ == "__main__":
    sys.exit(main())
