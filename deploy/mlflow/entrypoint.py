"""Start the MLflow server with basic auth; the admin password comes from a secret file.

The password never goes into the image, the compose file or the container's environment (which
`docker inspect` shows): it is read from the mounted secret file and handed to this process's
environment only. The auth config (no secrets in it) is written to a tmpfs. MLflow creates the
`admin` user on first start; when the secret changes later, the stored password is rotated here.
The API's own user (not an admin: it can only read, MLflow's default permission being READ) is
created here from its secret file on first start, and its password kept in line with the file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from pathlib import Path
from typing import Any

# The compose file (generated from config/) names the admin user and its secret file.
SECRET_FILE = Path(os.environ.get("MLFLOW_ADMIN_PASSWORD_FILE", ""))
ADMIN_USER = os.environ.get("MLFLOW_ADMIN_USER", "")
API_SECRET_FILE = Path(os.environ.get("MLFLOW_API_PASSWORD_FILE", ""))
API_USER = os.environ.get("MLFLOW_API_USER", "")
AUTH_DB_URI = os.environ.get("MLFLOW_AUTH_DB_URI", "sqlite:////mlflow/db/basic_auth.db")


def _auth_config() -> str:
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {AUTH_DB_URI}\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def _auth_store() -> Any:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(AUTH_DB_URI)  # type: ignore[no-untyped-call]
    return store


def _rotate_admin_password(store: Any, password: str) -> None:
    """Make the stored admin password equal the secret (a no-op on first start)."""
    if store.has_user(ADMIN_USER) and not store.authenticate_user(ADMIN_USER, password):
        store.update_user(ADMIN_USER, password=password)
        print("mlflow-entrypoint: admin password rotated to the current secret", flush=True)


def _ensure_api_user(store: Any, password: str) -> None:
    """The API's read-only user exists, is no admin, and has the secret's password."""
    if not store.has_user(API_USER):
        store.create_user(API_USER, password, is_admin=False)
        print(f"mlflow-entrypoint: created the read-only user {API_USER!r}", flush=True)
    elif not store.authenticate_user(API_USER, password):
        store.update_user(API_USER, password=password)
        print(f"mlflow-entrypoint: {API_USER!r} password rotated to the current secret", flush=True)
    if store.get_user(API_USER).is_admin:
        store.update_user(API_USER, is_admin=False)


def _read_secret(path: Path) -> str:
    if not path.is_file():
        sys.exit(f"mlflow-entrypoint: secret file {path} is missing; refusing to start without auth")
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        sys.exit(f"mlflow-entrypoint: secret file {path} is empty")
    return secret


def main() -> None:
    if not all((ADMIN_USER, SECRET_FILE.name, API_USER, API_SECRET_FILE.name)):
        sys.exit(
            "mlflow-entrypoint: set MLFLOW_ADMIN_USER, MLFLOW_ADMIN_PASSWORD_FILE, "
            "MLFLOW_API_USER and MLFLOW_API_PASSWORD_FILE"
        )
    password = _read_secret(SECRET_FILE)
    scratch = os.environ.get("TMPDIR", "/tmp")  # noqa: S108 - the container's private tmpfs
    config = Path(scratch) / "mlflow-basic-auth.ini"
    config.write_text(_auth_config(), encoding="utf-8")
    store = _auth_store()
    _rotate_admin_password(store, password)
    _ensure_api_user(store, _read_secret(API_SECRET_FILE))
    # Flask's CSRF key must be the same in every worker and across restarts, and secret: derive it.
    flask_key = hmac.new(password.encode(), b"mlflow-flask-server-secret-key", hashlib.sha256).hexdigest()
    env = dict(
        os.environ,
        MLFLOW_AUTH_CONFIG_PATH=str(config),
        MLFLOW_AUTH_ADMIN_PASSWORD=password,
        MLFLOW_FLASK_SERVER_SECRET_KEY=flask_key,
    )
    args = ["mlflow", "server", "--app-name", "basic-auth", *sys.argv[1:]]
    os.execvpe(args[0], args, env)


if __name__ == "__main__":
    main()
