"""The edge's TLS certificate: self-signed until a domain's ACME certificate is issued and renewed.

    python3 certificates.py obtain   # issue (or keep) the domain's certificate and install it
    python3 certificates.py renew    # renew it when due and install the new one

Environment:
  EDGE_CERT_DIR      where nginx reads fullchain.pem and privkey.pem
  EDGE_DOMAIN        the domain (an A record pointing at this host); empty: no ACME
  EDGE_ACME_SERVER   the ACME directory URL (the stack passes Let's Encrypt's unless told otherwise)
  EDGE_ACME_EMAIL    account e-mail for expiry notices; empty: no e-mail
  EDGE_ACME_WEBROOT  the folder nginx serves /.well-known/acme-challenge/ from (HTTP-01)
  EDGE_ACME_STATE    certbot's account, certificates and logs (a volume: survives restarts)
  EDGE_ACME_CA_FILE  a CA bundle to trust for the ACME server itself (a private ACME CA);
                     ignored when the file is missing or empty

certbot (Debian's package) does the ACME work over HTTP-01, with nginx answering the challenges
from the webroot. Installing copies the files next to each other and renames them into place, so
nginx never reads a key that does not match its certificate. Exit code 0: a certificate for the
domain is installed; 1: not (the caller retries later).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

CHAIN, KEY = "fullchain.pem", "privkey.pem"


def say(message: str) -> None:
    print(f"edge-certificates: {message}", file=sys.stderr, flush=True)


def _subject_alt_name(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name}"


def ensure_self_signed(cert_dir: Path, name: str) -> None:
    """A self-signed certificate for `name` unless one (of any kind) is installed already."""
    if (cert_dir / CHAIN).is_file() and (cert_dir / KEY).is_file():
        return
    say(f"no certificate yet: making a self-signed one for {name}")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "825", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={_subject_alt_name(name)}",
         "-keyout", str(cert_dir / KEY), "-out", str(cert_dir / CHAIN)],
        check=True, capture_output=True,
    )  # fmt: skip
    (cert_dir / KEY).chmod(0o600)


def _certbot_dirs(state: Path) -> list[str]:
    return [
        "--config-dir", str(state / "config"),
        "--work-dir", str(state / "work"),
        "--logs-dir", str(state / "logs"),
    ]  # fmt: skip


def _certbot(args: list[str], state: Path) -> bool:
    env = dict(os.environ)
    ca_file = Path(env.get("EDGE_ACME_CA_FILE", "") or "/nonexistent")
    if ca_file.is_file() and ca_file.stat().st_size > 0:
        env["REQUESTS_CA_BUNDLE"] = str(ca_file)  # certbot's HTTP client (requests) reads it
    result = subprocess.run(
        ["certbot", *args, *_certbot_dirs(state), "--non-interactive"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        say(f"certbot {args[0]} failed: {(result.stderr or result.stdout).strip()[-1500:]}")
    return result.returncode == 0


def install(state: Path, domain: str, cert_dir: Path) -> bool:
    """Copy certbot's current files for `domain` into place; True when they changed."""
    live = state / "config" / "live" / domain
    changed = False
    for name in (KEY, CHAIN):  # the key first: a new chain never meets an old key
        data = (live / name).read_bytes()
        target = cert_dir / name
        if target.is_file() and target.read_bytes() == data:
            continue
        staging = cert_dir / f".{name}.new"
        staging.write_bytes(data)
        staging.chmod(0o600)
        staging.rename(target)
        changed = True
    return changed


def obtain(env: dict[str, str]) -> bool:
    domain, state = env["EDGE_DOMAIN"], Path(env["EDGE_ACME_STATE"])
    account = (
        ["--email", env["EDGE_ACME_EMAIL"]]
        if env.get("EDGE_ACME_EMAIL")
        else ["--register-unsafely-without-email"]
    )
    args = [
        "certonly", "--webroot", "-w", env["EDGE_ACME_WEBROOT"], "-d", domain,
        "--server", env["EDGE_ACME_SERVER"], "--agree-tos", "--keep-until-expiring",
        *account,
    ]  # fmt: skip
    if not _certbot(args, state):
        return False
    if install(state, domain, Path(env["EDGE_CERT_DIR"])):
        say(f"installed the certificate for {domain}")
    return True


def renew(env: dict[str, str]) -> bool:
    """Renew when due (certbot decides: 30 days before expiry) and install what changed."""
    state = Path(env["EDGE_ACME_STATE"])
    if not _certbot(["renew"], state):
        return False
    if install(state, env["EDGE_DOMAIN"], Path(env["EDGE_CERT_DIR"])):
        say(f"installed the renewed certificate for {env['EDGE_DOMAIN']}")
    return True


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    if not env.get("EDGE_DOMAIN"):
        say("EDGE_DOMAIN is empty: no ACME certificate to manage")
        return 1
    action = {"obtain": obtain, "renew": renew}.get(argv[1] if len(argv) > 1 else "")
    if action is None:
        say("usage: certificates.py obtain|renew")
        return 2
    return 0 if action(env) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
