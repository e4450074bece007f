"""Secrets reach Ansible as answers to the playbooks' prompts, never through a recorded file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from stacks import playbook_run
from stacks.provision_env import (
    MLFLOW_API_PASSWORD_PROMPT,
    MLFLOW_PROMOTER_PASSWORD_PROMPT,
    MLFLOW_TRAINER_PASSWORD_PROMPT,
    mlflow_api_password,
    mlflow_promoter_password,
    mlflow_trainer_password,
    playbook_secrets,
)

PLAYBOOKS = Path(playbook_run.PLAYBOOK_DIR)


def prompts_of(playbook: str) -> dict[str, dict[str, object]]:
    (play,) = yaml.safe_load((PLAYBOOKS / playbook).read_text(encoding="utf-8"))
    return {entry["prompt"]: entry for entry in play.get("vars_prompt", [])}


@pytest.mark.parametrize("playbook", ["site.yml", "local.yml"])
def test_every_prompt_of_the_playbooks_is_answered_and_private(playbook: str) -> None:
    # An unanswered prompt would wait until the run's timeout.
    prompts = prompts_of(playbook)
    assert set(prompts) == set(playbook_secrets("a" * 16, "b" * 16))
    for entry in prompts.values():
        assert entry["private"] is True
        assert entry["unsafe"] is True  # a password with `{{` is never templated


def test_the_roles_read_no_secret_from_the_environment() -> None:
    texts = [path.read_text(encoding="utf-8") for path in PLAYBOOKS.rglob("*.yml")]
    assert not [text for text in texts if re.search(r"lookup\(\s*'(ansible\.builtin\.)?env'.*PASSWORD", text)]


def test_prompt_patterns_match_ansibles_prompt_line_only() -> None:
    answers = playbook_run.prompt_answers({"MLOPS_X_PASSWORD": "secret"})
    (pattern,) = answers
    assert re.search(pattern, "PLAY [x]\r\nMLOPS_X_PASSWORD: ", re.M)
    assert not re.search(pattern, "fail: MLOPS_X_PASSWORD (and more) must be set", re.M)
    assert not re.search(pattern, "MLOPS_X_PASSWORD_OTHER: ", re.M)


def test_the_api_password_is_derived_not_the_admins() -> None:
    secrets = playbook_secrets("admin-password-1234", "")
    assert secrets[MLFLOW_API_PASSWORD_PROMPT] == mlflow_api_password("admin-password-1234")
    assert "admin-password-1234" not in secrets[MLFLOW_API_PASSWORD_PROMPT]
    assert mlflow_api_password("other-admin-password") != secrets[MLFLOW_API_PASSWORD_PROMPT]


def test_each_mlflow_user_has_its_own_derived_password() -> None:
    # One rotation (the admin's) renews them all; none equals another or the admin's.
    secrets = playbook_secrets("admin-password-1234", "")
    assert secrets[MLFLOW_TRAINER_PASSWORD_PROMPT] == mlflow_trainer_password("admin-password-1234")
    assert secrets[MLFLOW_PROMOTER_PASSWORD_PROMPT] == mlflow_promoter_password("admin-password-1234")
    derived = [
        secrets[p]
        for p in (MLFLOW_API_PASSWORD_PROMPT, MLFLOW_TRAINER_PASSWORD_PROMPT, MLFLOW_PROMOTER_PASSWORD_PROMPT)
    ]
    assert len({*derived, "admin-password-1234"}) == 4
    assert mlflow_trainer_password("other-admin-password") != secrets[MLFLOW_TRAINER_PASSWORD_PROMPT]


def test_variables_holding_a_secret_leave_the_environment_for_the_run_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
    monkeypatch.setenv("MLOPS_SSH_PRIVATE_KEY", key)
    monkeypatch.setenv("SOME_COPY", f"prefix {key}")
    monkeypatch.setenv("HARMLESS", "value")
    with playbook_run.environment_without([f"{key}\n", ""]):
        assert "MLOPS_SSH_PRIVATE_KEY" not in os.environ
        assert "SOME_COPY" not in os.environ
        assert os.environ["HARMLESS"] == "value"
    assert os.environ["MLOPS_SSH_PRIVATE_KEY"] == key
    assert os.environ["SOME_COPY"] == f"prefix {key}"
