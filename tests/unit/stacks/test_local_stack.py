"""`make stack` runs the VM's own stack role on this machine: same role, local connection, var/stack."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from config import stack_layout as layout
from stacks import local_stack
from stacks.playbook_run import PLAYBOOK_DIR
from stacks.provision_env import (
    ENV_ALERTMANAGER_CONFIG,
    ENV_GRAFANA_PASSWORD,
    ENV_MLFLOW_PASSWORD,
    MLFLOW_API_PASSWORD_PROMPT,
    MLFLOW_PROMOTER_PASSWORD_PROMPT,
    MLFLOW_TRAINER_PASSWORD_PROMPT,
)


def _roles(playbook: str) -> list[str]:
    plays = yaml.safe_load((PLAYBOOK_DIR / playbook).read_text(encoding="utf-8"))
    return [role["role"] for play in plays for role in play["roles"]]


def _args(*argv: str) -> argparse.Namespace:
    return local_stack.parse_args(["up", *argv])


def test_the_vm_and_the_local_stack_run_the_same_stack_role() -> None:
    assert _roles("site.yml") == ["docker", "stack", "backup"]
    assert _roles("local.yml") == ["stack"]


def test_the_local_run_is_a_local_connection_under_var_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_stack, "STACK_ROOT", Path("/nonexistent/var/stack"))
    run = local_stack.local_run(_args("--without", "grafana"), {}, ["/venv/bin/docker-compose"])
    assert run.playbook == "local.yml"
    (host,) = run.inventory["all"]["hosts"].values()
    assert host["ansible_connection"] == "local"
    assert run.extravars["stack_dir"] == "/nonexistent/var/stack"
    assert run.extravars["stack_compose"] == "/venv/bin/docker-compose"
    assert run.extravars["stack_image_delivery"] == "local"
    assert run.extravars["stack_prune_images"] is False
    assert run.extravars["stack_grafana_enabled"] is False
    assert run.ssh_key is None
    # Passwords are prompt answers only, never in the variables Ansible records.
    mlflow_users = {
        MLFLOW_API_PASSWORD_PROMPT,
        MLFLOW_TRAINER_PASSWORD_PROMPT,
        MLFLOW_PROMOTER_PASSWORD_PROMPT,
    }
    assert set(run.secrets) == {
        ENV_MLFLOW_PASSWORD,
        *mlflow_users,
        ENV_GRAFANA_PASSWORD,
        ENV_ALERTMANAGER_CONFIG,
    }
    assert not set(run.secrets.values()) & {str(v) for v in run.extravars.values()}


def test_passwords_come_from_the_environment_else_the_last_run_else_new(tmp_path: Path) -> None:
    secrets_dir = tmp_path / layout.SECRETS_DIR
    secrets_dir.mkdir()
    (secrets_dir / layout.MLFLOW_ADMIN_SECRET).write_text("kept-from-last-run\n")
    found = local_stack.local_passwords({ENV_GRAFANA_PASSWORD: "from-env"}, tmp_path)
    assert found[ENV_MLFLOW_PASSWORD] == "kept-from-last-run"
    assert found[ENV_GRAFANA_PASSWORD] == "from-env"
    fresh = local_stack.local_passwords({}, tmp_path / "elsewhere")
    assert len(fresh[ENV_MLFLOW_PASSWORD]) >= 24
    assert fresh[ENV_MLFLOW_PASSWORD] != fresh[ENV_GRAFANA_PASSWORD]


def test_compose_v2_comes_from_the_virtualenv_first() -> None:
    command = local_stack.compose_command()
    assert command[0].endswith("docker-compose")
    assert Path(command[0]).exists()
