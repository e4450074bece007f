"""MLflow's identities, run by the image's entrypoint: `rotate-admin` before the server starts,
`apply` once it answers.

`rotate-admin` works on the auth database directly: the admin's stored password is the only one
that cannot be changed through the auth API after a rotation (logging in would need the old one).
`apply` logs in as the admin and goes through MLflow's auth API only (the REST routes of the
basic-auth app, through `AuthServiceClient`), so every other user is made the way an operator
would make it by hand. None of them is an admin:

- the trainer's user: EDIT on the training experiment and on the registered model;
- the promoter's user (`mlops-promote`): EDIT on the registered model (the serving alias and version
  tags); READ elsewhere, so no runs;
- the API's user: granted nothing, so MLflow's default permission (READ) is all it has.

The admin creates the experiment and the registered model first: MLflow gives whoever creates
one MANAGE on it, which the trainer must not get. Every step is idempotent and runs on every
start, so a rotated secret (they all derive from the admin's) reaches every user on the restart.
Passwords are read from the secret files and never printed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_USER = os.environ.get("MLFLOW_ADMIN_USER", "")
ADMIN_SECRET_FILE = Path(os.environ.get("MLFLOW_ADMIN_PASSWORD_FILE", ""))
AUTH_DB_URI = os.environ.get("MLFLOW_AUTH_DB_URI", "sqlite:////mlflow/db/basic_auth.db")
EXPERIMENT = os.environ.get("MLFLOW_TRAINING_EXPERIMENT", "")
MODEL = os.environ.get("MLFLOW_MODEL_NAME", "")
# MLflow's names for what a grant applies to, and the level granted (mlflow.server.auth.permissions).
EXPERIMENT_RESOURCE = "experiment"
MODEL_RESOURCE = "registered_model"
EDIT = "EDIT"


@dataclass(frozen=True)
class Identity:
    user: str
    secret_file: Path
    # (resource type, resource id) pairs this user may EDIT; nothing else beyond the default READ.
    edits: tuple[tuple[str, str], ...]


def _identity(role: str, edits: tuple[tuple[str, str], ...]) -> Identity:
    user = os.environ.get(f"MLFLOW_{role}_USER", "")
    secret_file = os.environ.get(f"MLFLOW_{role}_PASSWORD_FILE", "")
    if not (user and secret_file):
        sys.exit(f"mlflow-identities: set MLFLOW_{role}_USER and MLFLOW_{role}_PASSWORD_FILE")
    return Identity(user, Path(secret_file), edits)


def identities(experiment_id: str) -> list[Identity]:
    return [
        _identity("API", ()),
        _identity("TRAINER", ((EXPERIMENT_RESOURCE, experiment_id), (MODEL_RESOURCE, MODEL))),
        _identity("PROMOTER", ((MODEL_RESOURCE, MODEL),)),
    ]


def read_secret(path: Path) -> str:
    if not path.is_file():
        sys.exit(f"mlflow-identities: secret file {path} is missing")
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        sys.exit(f"mlflow-identities: secret file {path} is empty")
    return secret


def rotate_admin() -> None:
    """Make the stored admin password equal the secret (a no-op on first start: MLflow creates it)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    password = read_secret(ADMIN_SECRET_FILE)
    store = SqlAlchemyStore()
    store.init_db(AUTH_DB_URI)  # type: ignore[no-untyped-call]
    if store.has_user(ADMIN_USER) and not store.authenticate_user(ADMIN_USER, password):
        store.update_user(ADMIN_USER, password=password)
        print("mlflow-identities: admin password rotated to the current secret", flush=True)


def _can_log_in(tracking_uri: str, user: str, password: str) -> bool:
    import requests

    # Any authenticated user may read their own identity; a wrong password gets 401.
    response = requests.get(f"{tracking_uri}/api/2.0/mlflow/users/current", auth=(user, password), timeout=10)
    return response.status_code == 200


def _ensure_user(auth: Any, tracking_uri: str, identity: Identity) -> None:
    from mlflow.exceptions import RestException

    password = read_secret(identity.secret_file)
    try:
        user = auth.get_user(identity.user)
    except RestException:
        auth.create_user(identity.user, password)
        print(f"mlflow-identities: created the user {identity.user!r}", flush=True)
        return
    if not _can_log_in(tracking_uri, identity.user, password):
        auth.update_user_password(identity.user, password)
        print(f"mlflow-identities: {identity.user!r} password set to the current secret", flush=True)
    if user.is_admin:
        auth.update_user_admin(identity.user, False)
        print(f"mlflow-identities: {identity.user!r} is no longer an admin", flush=True)


def _ensure_edit(auth: Any, user: str, resource_type: str, resource_id: str) -> None:
    from mlflow.exceptions import RestException

    if auth.get_user_permission(user, resource_type, resource_id).permission == EDIT:
        return
    with contextlib.suppress(RestException):  # a grant at another level is replaced, never stacked
        auth.revoke_user_permission(user, resource_type, resource_id)
    auth.grant_user_permission(user, resource_type, resource_id, EDIT)
    print(f"mlflow-identities: {user!r} may edit {resource_type} {resource_id!r}", flush=True)


def _ensure_experiment_and_model() -> str:
    """Create the training experiment and the registered model as the admin (who then owns them)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    try:
        client.get_registered_model(MODEL)
    except RestException:
        client.create_registered_model(MODEL)
    return str(experiment_id)


def apply(tracking_uri: str) -> None:
    """Every identity exists, is no admin, has its secret's password and exactly its grants."""
    if not (ADMIN_USER and ADMIN_SECRET_FILE.name and EXPERIMENT and MODEL):
        sys.exit(
            "mlflow-identities: set MLFLOW_ADMIN_USER, MLFLOW_ADMIN_PASSWORD_FILE, "
            "MLFLOW_TRAINING_EXPERIMENT and MLFLOW_MODEL_NAME"
        )
    # This process's own environment only: MLflow's clients read the admin's login from it.
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = ADMIN_USER
    os.environ["MLFLOW_TRACKING_PASSWORD"] = read_secret(ADMIN_SECRET_FILE)
    from mlflow.server import get_app_client

    auth = get_app_client("basic-auth", tracking_uri=tracking_uri)
    experiment_id = _ensure_experiment_and_model()
    for identity in identities(experiment_id):
        _ensure_user(auth, tracking_uri, identity)
        for resource_type, resource_id in identity.edits:
            _ensure_edit(auth, identity.user, resource_type, resource_id)


def main(argv: list[str]) -> None:
    if argv[:1] == ["rotate-admin"] and ADMIN_USER and ADMIN_SECRET_FILE.name:
        rotate_admin()
    elif len(argv) == 2 and argv[0] == "apply":
        apply(argv[1])
    else:
        sys.exit("usage: identities.py rotate-admin | apply TRACKING_URI (with the MLFLOW_* variables set)")


if __name__ == "__main__":
    main(sys.argv[1:])
