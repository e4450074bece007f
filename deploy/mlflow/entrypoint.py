"""Start the MLflow server with basic auth, then put MLflow's identities in place.

The password never goes into the image, the compose file or the container's environment (which
`docker inspect` shows): it is read from the mounted secret file and handed to the server's
environment only. The auth config (no secrets in it) is written to a tmpfs. MLflow creates the
`admin` user on first start; when the secret changes later, the stored password is rotated first.

Once the server answers, identities.py (next to this file) creates or updates the other users
through MLflow's auth API, as the admin; then this process writes the ready file that the
container's healthcheck requires, so no client starts before its user exists. This process stays
as the container's first process: it forwards stop signals to the server and exits with it. The
MLflow work runs in short-lived child processes, so this one stays small.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

# The compose file (generated from config/) names the admin user and its secret file.
SECRET_FILE = Path(os.environ.get("MLFLOW_ADMIN_PASSWORD_FILE", ""))
ADMIN_USER = os.environ.get("MLFLOW_ADMIN_USER", "")
AUTH_DB_URI = os.environ.get("MLFLOW_AUTH_DB_URI", "sqlite:////mlflow/db/basic_auth.db")
READY_FILE = Path(os.environ.get("MLFLOW_IDENTITIES_READY_FILE", ""))
IDENTITIES = Path(__file__).with_name("identities.py")
# A cold start on one shared CPU (database migrations, two workers) takes well under this.
STARTUP_TIMEOUT_SECONDS = 300.0


def _auth_config() -> str:
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {AUTH_DB_URI}\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def _read_secret(path: Path) -> str:
    if not path.is_file():
        sys.exit(f"mlflow-entrypoint: secret file {path} is missing; refusing to start without auth")
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        sys.exit(f"mlflow-entrypoint: secret file {path} is empty")
    return secret


def _port(args: list[str]) -> str:
    """The port the server listens on: `--port N` among its arguments, else MLflow's default."""
    for flag, value in itertools.pairwise(args):
        if flag == "--port":
            return value
    return "5000"


def _identities(*args: str) -> None:
    subprocess.run([sys.executable, str(IDENTITIES), *args], check=True)


def _wait_until_up(server: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):  # noqa: S310 - our own http URL
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s")


def _signal_group(server: subprocess.Popen[bytes], signum: int) -> None:
    # The server's workers are its children: signal its whole group, which may be gone already.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signum)


def _supervise(args: list[str], env: dict[str, str]) -> int:
    """Run the server in its own process group; stop signals go to the whole group."""
    server = subprocess.Popen(
        ["mlflow", "server", "--app-name", "basic-auth", *args], env=env, start_new_session=True
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        _signal_group(server, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        _wait_until_up(server, f"http://127.0.0.1:{_port(args)}")
        _identities("apply", f"http://127.0.0.1:{_port(args)}")
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"mlflow-entrypoint: identities not applied ({error}); stopping", file=sys.stderr, flush=True)
        _signal_group(server, signal.SIGTERM)
        server.wait()
        return 1
    READY_FILE.touch()
    print("mlflow-entrypoint: identities in place; ready", flush=True)
    return server.wait()


def main() -> None:
    if not all((ADMIN_USER, SECRET_FILE.name, READY_FILE.name)):
        sys.exit(
            "mlflow-entrypoint: set MLFLOW_ADMIN_USER, MLFLOW_ADMIN_PASSWORD_FILE "
            "and MLFLOW_IDENTITIES_READY_FILE"
        )
    READY_FILE.unlink(missing_ok=True)
    password = _read_secret(SECRET_FILE)
    scratch = os.environ.get("TMPDIR", "/tmp")  # noqa: S108 - the container's private tmpfs
    config = Path(scratch) / "mlflow-basic-auth.ini"
    config.write_text(_auth_config(), encoding="utf-8")
    _identities("rotate-admin")
    # Flask's CSRF key must be the same in every worker and across restarts, and secret: derive it.
    flask_key = hmac.new(password.encode(), b"mlflow-flask-server-secret-key", hashlib.sha256).hexdigest()
    env = dict(
        os.environ,
        MLFLOW_AUTH_CONFIG_PATH=str(config),
        MLFLOW_AUTH_ADMIN_PASSWORD=password,
        MLFLOW_FLASK_SERVER_SECRET_KEY=flask_key,
    )
    sys.exit(_supervise(sys.argv[1:], env))


if __name__ == "__main__":
    main()
