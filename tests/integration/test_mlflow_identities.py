"""Least privilege in MLflow, against the real MLflow image entrypoint and basic-auth server.

deploy/mlflow/entrypoint.py runs here as in the container (same environment variables, secret
files, auth config): it rotates the admin, starts `mlflow server --app-name basic-auth`, and
identities.py creates the users through MLflow's auth API. The passwords are derived from the
admin's exactly as the provisioning derives them. Then each identity tries what it may and may not
do, over MLflow's REST API: the server's answers (200, 403) are the evidence.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from config import stack_layout as layout
from config.app_settings import CHAMPION_ALIAS, DEFAULT_EXPERIMENT_NAME, DEFAULT_MODEL_NAME
from stacks.provision_env import mlflow_api_password, mlflow_promoter_password, mlflow_trainer_password
from tests.support.processes import REPO, Server, clean_env, free_port, start_process, train, wait_for_http

pytestmark = pytest.mark.integration

ENTRYPOINT = REPO / "deploy" / "mlflow" / "entrypoint.py"
OTHER_EXPERIMENT, OTHER_MODEL = "someone-elses", "someone-elses-model"


@dataclass(frozen=True)
class Stack:
    server: Server
    root: Path
    logins: dict[str, tuple[str, str]]  # role -> (user, password)

    def call(
        self,
        role: str,
        method: str,
        path: str,
        json: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """One REST call to MLflow, logged in as `role`'s user."""
        url = f"{self.server.base_url}{path}"
        return requests.request(method, url, auth=self.logins[role], json=json, params=params, timeout=30)


def write_secrets(secrets: Path, admin_password: str) -> dict[str, tuple[str, str]]:
    logins = {
        "admin": (layout.MLFLOW_ADMIN_USER, admin_password),
        "api": (layout.MLFLOW_API_USER, mlflow_api_password(admin_password)),
        "trainer": (layout.MLFLOW_TRAINER_USER, mlflow_trainer_password(admin_password)),
        "promoter": (layout.MLFLOW_PROMOTER_USER, mlflow_promoter_password(admin_password)),
    }
    secrets.mkdir(exist_ok=True)
    for role, (_user, password) in logins.items():
        path = secrets / f"{role}-password"
        path.write_text(f"{password}\n", encoding="utf-8")
        path.chmod(0o600)
    return logins


def start_mlflow(root: Path, admin_password: str) -> Stack:
    """The entrypoint with the compose file's variables, on `root`'s databases and artifacts."""
    logins = write_secrets(root / "secrets", admin_password)
    port = free_port()
    users = {role.upper(): user for role, (user, _password) in logins.items()}
    env = clean_env(
        {
            "TMPDIR": str(root),
            "MLFLOW_AUTH_DB_URI": f"sqlite:///{root}/basic_auth.db",
            "MLFLOW_IDENTITIES_READY_FILE": str(root / "ready"),
            "MLFLOW_TRAINING_EXPERIMENT": DEFAULT_EXPERIMENT_NAME,
            "MLFLOW_MODEL_NAME": DEFAULT_MODEL_NAME,
            **{f"MLFLOW_{role}_USER": user for role, user in users.items()},
            **{
                f"MLFLOW_{role}_PASSWORD_FILE": str(root / "secrets" / f"{role.lower()}-password")
                for role in users
            },
        }
    )
    args = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--serve-artifacts"]
    args += [
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "art"),
    ]
    server = start_process(
        [sys.executable, str(ENTRYPOINT), *args], env, root / "mlflow.log", f"http://127.0.0.1:{port}"
    )
    try:
        wait_for_http(f"{server.base_url}/health", timeout=120, process=server.process)
        # identities.py runs once the server answers; the healthcheck waits for this file too.
        deadline = time.monotonic() + 120
        while not (root / "ready").exists() and server.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (root / "ready").exists(), server.log()[-3000:]
    except BaseException:
        server.stop()
        raise
    return Stack(server, root, logins)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_mlflow(tmp_path_factory.mktemp("mlflow-identities"), "admin-" + os.urandom(12).hex())
    # Someone else's experiment and model, made by the admin: the users must not touch them.
    started.call("admin", "POST", "/api/2.0/mlflow/experiments/create", json={"name": OTHER_EXPERIMENT})
    started.call("admin", "POST", "/api/2.0/mlflow/registered-models/create", json={"name": OTHER_MODEL})
    yield started
    started.server.stop()


@pytest.fixture(scope="module")
def trained(stack: Stack) -> dict[str, object]:
    """The real training job, logged in as the trainer's user (as the stack's trainer service is)."""
    user, password = stack.logins["trainer"]
    result = train(
        stack.server.base_url,
        stack.root / "unused-artifact-root",
        stack.root / "train.log",
        MLFLOW_TRACKING_USERNAME=user,
        MLFLOW_TRACKING_PASSWORD=password,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def experiment_id(stack: Stack, name: str) -> str:
    answer = stack.call(
        "admin", "GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}
    )
    return str(answer.json()["experiment"]["experiment_id"])


def create_run(stack: Stack, role: str, experiment: str) -> requests.Response:
    body = {"experiment_id": experiment_id(stack, experiment)}
    return stack.call(role, "POST", "/api/2.0/mlflow/runs/create", json=body)


def set_alias(stack: Stack, role: str, model: str, version: str) -> requests.Response:
    body = {"name": model, "alias": "candidate", "version": version}
    return stack.call(role, "POST", "/api/2.0/mlflow/registered-models/alias", json=body)


def set_version_tag(stack: Stack, role: str, version: str) -> requests.Response:
    body = {"name": DEFAULT_MODEL_NAME, "version": version, "key": f"by-{role}", "value": "x"}
    return stack.call(role, "POST", "/api/2.0/mlflow/model-versions/set-tag", json=body)


def create_user(stack: Stack, role: str) -> requests.Response:
    body = {"username": f"made-by-{role}", "password": "x" * 16}
    return stack.call(role, "POST", "/api/2.0/mlflow/users/create", json=body)


ROLES = ("api", "trainer", "promoter")


@pytest.mark.parametrize("role", ROLES)
def test_no_identity_is_an_admin(stack: Stack, role: str) -> None:
    user, _password = stack.logins[role]
    answer = stack.call("admin", "GET", "/api/2.0/mlflow/users/get", params={"username": user})
    assert answer.status_code == 200
    assert answer.json()["user"]["is_admin"] is False
    # Nor can it act as one: user management is refused.
    assert create_user(stack, role).status_code == 403


def test_the_trainer_trains_registers_and_promotes_in_its_experiment_and_model(
    stack: Stack, trained: dict[str, object]
) -> None:
    assert trained["model_name"] == DEFAULT_MODEL_NAME
    assert trained["promoted"] is True
    run = stack.call("admin", "GET", "/api/2.0/mlflow/runs/get", params={"run_id": str(trained["run_id"])})
    assert run.json()["run"]["info"]["experiment_id"] == experiment_id(stack, DEFAULT_EXPERIMENT_NAME)
    champion = stack.call(
        "admin",
        "GET",
        "/api/2.0/mlflow/registered-models/alias",
        params={"name": DEFAULT_MODEL_NAME, "alias": CHAMPION_ALIAS},
    )
    assert champion.json()["model_version"]["version"] == trained["version"]


def test_the_trainer_is_refused_on_someone_elses_experiment_and_model(stack: Stack) -> None:
    assert create_run(stack, "trainer", OTHER_EXPERIMENT).status_code == 403
    body = {"name": OTHER_MODEL, "source": "mlflow-artifacts:/nothing"}
    assert (
        stack.call("trainer", "POST", "/api/2.0/mlflow/model-versions/create", json=body).status_code == 403
    )
    # EDIT is not MANAGE: it cannot grant itself (or anyone) more.
    grant = {
        "username": stack.logins["trainer"][0],
        "resource_type": "experiment",
        "resource_id": experiment_id(stack, OTHER_EXPERIMENT),
        "permission": "EDIT",
    }
    assert (
        stack.call("trainer", "POST", "/api/3.0/mlflow/users/permissions/grant", json=grant).status_code
        == 403
    )


def test_the_promoter_sets_the_alias_and_version_tags_but_creates_no_run(
    stack: Stack, trained: dict[str, object]
) -> None:
    version = str(trained["version"])
    assert set_alias(stack, "promoter", DEFAULT_MODEL_NAME, version).status_code == 200
    assert set_version_tag(stack, "promoter", version).status_code == 200
    assert create_run(stack, "promoter", DEFAULT_EXPERIMENT_NAME).status_code == 403
    assert set_alias(stack, "promoter", OTHER_MODEL, version).status_code == 403
    # EDIT is not MANAGE: promotion deletes nothing.
    delete = {"name": DEFAULT_MODEL_NAME, "version": version}
    assert (
        stack.call("promoter", "DELETE", "/api/2.0/mlflow/model-versions/delete", json=delete).status_code
        == 403
    )


def test_the_api_only_reads(stack: Stack, trained: dict[str, object]) -> None:
    version = str(trained["version"])
    champion = stack.call(
        "api",
        "GET",
        "/api/2.0/mlflow/registered-models/alias",
        params={"name": DEFAULT_MODEL_NAME, "alias": CHAMPION_ALIAS},
    )
    assert champion.status_code == 200
    assert set_alias(stack, "api", DEFAULT_MODEL_NAME, version).status_code == 403
    assert create_run(stack, "api", DEFAULT_EXPERIMENT_NAME).status_code == 403
    assert set_version_tag(stack, "api", version).status_code == 403
    tag = {"name": DEFAULT_MODEL_NAME, "key": "by-api", "value": "x"}
    assert stack.call("api", "POST", "/api/2.0/mlflow/registered-models/set-tag", json=tag).status_code == 403


def test_any_user_may_still_create_a_new_experiment_or_model(stack: Stack) -> None:
    """MLflow's basic auth without workspaces lets every authenticated user create experiments and
    registered models (becoming their manager): README's "MLflow identities" states it. Nothing existing
    widens."""
    made = stack.call("api", "POST", "/api/2.0/mlflow/experiments/create", json={"name": "made-by-api"})
    assert made.status_code == 200
    assert stack.call("api", "POST", "/api/2.0/mlflow/registered-models/create", json={"name": "by-api"}).ok
    assert create_run(stack, "api", DEFAULT_EXPERIMENT_NAME).status_code == 403


def test_a_rotated_admin_password_renews_every_users_password(tmp_path: Path) -> None:
    first = start_mlflow(tmp_path, "first-admin-" + os.urandom(8).hex())
    first.server.stop()
    second = start_mlflow(tmp_path, "second-admin-" + os.urandom(8).hex())  # same databases
    try:
        for role in ("admin", *ROLES):
            assert second.call(role, "GET", "/api/2.0/mlflow/users/current").status_code == 200, role
            old = requests.get(
                f"{second.server.base_url}/api/2.0/mlflow/users/current", auth=first.logins[role], timeout=30
            )
            assert old.status_code == 401, role
        assert create_run(second, "trainer", DEFAULT_EXPERIMENT_NAME).status_code == 200
    finally:
        second.server.stop()
