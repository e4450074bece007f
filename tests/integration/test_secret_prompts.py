"""The playbooks' secret prompts, answered by the real ansible-runner path, with no secret in any
file of the run at any moment (a killed run leaves its private data dir behind).

Each playbook's own `vars_prompt` header runs here with a local connection and one task that
writes what it received; the full playbooks run the same way in the end-to-end test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from stacks import playbook_run
from stacks.provision_env import ENV_MLFLOW_PASSWORD, ENV_PRIVATE_KEY, playbook_secrets
from tests.support.secret_scan import SecretScan

ADMIN, GRAFANA = "admin-" + os.urandom(8).hex(), "grafana-" + os.urandom(8).hex()
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key-" + os.urandom(8).hex() + "\n-----END"


def prompt_only_playbook(directory: Path, playbook: str, received: Path) -> None:
    (play,) = yaml.safe_load((playbook_run.PLAYBOOK_DIR / playbook).read_text(encoding="utf-8"))
    names = [entry["name"] for entry in play["vars_prompt"]]
    task = {
        "name": "Write what the prompts received",
        "ansible.builtin.copy": {
            "content": "\n".join(f"{{{{ {n} }}}}" for n in names),
            "dest": str(received),
        },
        "no_log": True,
    }
    # A pause keeps the run going while the scan watches its files.
    pause = {"name": "Let the scan watch", "ansible.builtin.pause": {"seconds": 2}}
    test_play = {
        "hosts": "all",
        "gather_facts": False,
        "vars_prompt": play["vars_prompt"],
        "tasks": [pause, task],
    }
    (directory / playbook).write_text(yaml.safe_dump([test_play]), encoding="utf-8")


@pytest.mark.parametrize("playbook", ["site.yml", "local.yml"])
def test_prompts_are_answered_and_no_file_of_the_run_holds_a_secret(
    playbook: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = tmp_path / "received.txt"
    prompt_only_playbook(tmp_path, playbook, received)
    monkeypatch.setattr(playbook_run, "PLAYBOOK_DIR", tmp_path)
    # As under Pulumi: the caller's environment holds the secrets.
    monkeypatch.setenv(ENV_MLFLOW_PASSWORD, ADMIN)
    monkeypatch.setenv(ENV_PRIVATE_KEY, FAKE_KEY)
    secrets = playbook_secrets(ADMIN, GRAFANA)
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    run = playbook_run.PlaybookRun(playbook, {"all": {"hosts": {"localhost": host}}}, {}, secrets, 120)
    with SecretScan([*secrets.values(), FAKE_KEY]) as scan, playbook_run.private_data_dir() as data_dir:
        playbook_run.run_playbook(run, data_dir, os.environ)
    assert received.read_text(encoding="utf-8").splitlines() == list(secrets.values())
    assert scan.command_files  # the scan saw the run's record of its command and environment
    assert not scan.findings, scan.findings
    # The caller's environment is whole again afterwards.
    assert os.environ[ENV_MLFLOW_PASSWORD] == ADMIN
