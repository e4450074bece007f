"""Provisioning wiring: wait for SSH, then run the entry point with secrets only in its environment."""

from __future__ import annotations

import itertools
import shlex
import shutil
from pathlib import Path

import pytest

from config import edge
from stacks.content_hash import PROVISIONING_INPUTS, content_hash
from tests.support.policy_harness import SECRET_SIGNATURE, unwrap_secrets
from tests.support.pulumi_harness import (
    FAKE_HOST_KEY,
    FAKE_IP,
    FAKE_PRIVATE_KEY,
    INSTANCE,
    LOCAL_COMMAND,
    RANDOM_PASSWORD,
    REMOTE_COMMAND,
    Deployment,
    engine_config,
    run_program,
    stack_files,
)

SECRET_ENV = (
    "MLOPS_SSH_PRIVATE_KEY",
    "MLOPS_SSH_HOST_KEY",
    "MLOPS_GRAFANA_ADMIN_PASSWORD",
    "MLOPS_MLFLOW_ADMIN_PASSWORD",
)


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return run_program(engine_config(stack_files()[0]))


def test_waits_for_ssh_with_the_deploy_key_retries_and_a_timeout(deployment: Deployment) -> None:
    wait = deployment.one(REMOTE_COMMAND)
    connection = unwrap_secrets(wait.inputs["connection"])
    assert connection["host"] == FAKE_IP
    assert connection["user"] == "deploy"
    assert connection["port"] == 22
    assert connection["privateKey"] == FAKE_PRIVATE_KEY
    assert connection["dialErrorLimit"] >= 10
    assert connection["perDialTimeout"] > 0
    assert wait.create_timeout  # an overall limit on top of the dial retries
    assert "/etc/ssh/ssh_host_ed25519_key.pub" in wait.inputs["create"]
    assert wait.inputs["addPreviousOutputInEnv"] is False
    assert wait.inputs["triggers"] == [f"{deployment.one(INSTANCE).name}-id"]


def test_entry_point_gets_the_address_in_argv_and_secrets_only_in_env(deployment: Deployment) -> None:
    run = deployment.one(LOCAL_COMMAND)
    argv = shlex.split(run.inputs["create"])
    address = ["-m", "stacks.provision", "--host", FAKE_IP, "--port", "22", "--user", "deploy"]
    assert argv[1:] == [*address, "--public", "grafana"]  # Pulumi.dev.yaml makes Grafana public
    assert Path(argv[0]).name.startswith("python")
    assert run.inputs["update"] == run.inputs["create"]

    # The whole environment travels as one Pulumi secret.
    assert SECRET_SIGNATURE in run.inputs["environment"]
    environment = unwrap_secrets(run.inputs["environment"])
    assert set(environment) == set(SECRET_ENV)
    assert environment["MLOPS_SSH_PRIVATE_KEY"] == FAKE_PRIVATE_KEY
    assert environment["MLOPS_SSH_HOST_KEY"] == FAKE_HOST_KEY  # read by the wait command, stripped
    passwords = {r.name: r for r in deployment.of_type(RANDOM_PASSWORD)}
    assert environment["MLOPS_GRAFANA_ADMIN_PASSWORD"] == "generated-password-of-mlops-dev-grafana-admin"
    assert environment["MLOPS_MLFLOW_ADMIN_PASSWORD"] == "generated-password-of-mlops-dev-mlflow-admin"
    assert all(password.inputs["length"] >= 24 for password in passwords.values())

    for secret in (FAKE_PRIVATE_KEY.strip(), *(v for k, v in environment.items() if "PASSWORD" in k)):
        assert secret not in run.inputs["create"]
        assert not any(secret in part for part in argv)


def test_output_cannot_leak_and_previous_output_is_not_fed_back(deployment: Deployment) -> None:
    run = deployment.one(LOCAL_COMMAND)
    assert run.inputs["logging"] == "stdout"
    assert run.inputs["addPreviousOutputInEnv"] is False
    assert {"stdout", "stderr"} <= set(run.additional_secret_outputs)
    assert run.create_timeout


def test_runs_after_the_vm_answers_on_ssh(deployment: Deployment) -> None:
    order = [r.type for r in deployment.registrations]
    assert order.index(INSTANCE) < order.index(REMOTE_COMMAND) < order.index(LOCAL_COMMAND)
    run = deployment.one(LOCAL_COMMAND)
    wait = deployment.one(REMOTE_COMMAND)
    assert wait.urn in run.dependencies
    assert deployment.one(INSTANCE).urn in run.dependencies
    assert deployment.one(INSTANCE).urn in wait.dependencies


def test_triggers_are_the_files_hash_and_the_vm_id(deployment: Deployment) -> None:
    run = deployment.one(LOCAL_COMMAND)
    repo_root = Path(run.inputs["dir"])
    assert run.inputs["triggers"] == [content_hash(repo_root), f"{deployment.one(INSTANCE).name}-id"]


def make_tree(root: Path) -> None:
    for folder in PROVISIONING_INPUTS:
        (root / folder / "sub").mkdir(parents=True)
        (root / folder / "sub" / "file.txt").write_text(f"content of {folder}\n")
    (root / "playbooks" / "site.yml").write_text("- hosts: all\n")


def test_a_changed_file_changes_the_trigger_and_an_unchanged_tree_does_not(tmp_path: Path) -> None:
    config = engine_config(stack_files()[0])
    make_tree(tmp_path)

    def trigger() -> str:
        value = run_program(config, repo_root=tmp_path).one(LOCAL_COMMAND).inputs["triggers"][0]
        assert isinstance(value, str)
        return value

    first = trigger()
    assert trigger() == first
    (tmp_path / "playbooks" / "site.yml").write_text("- hosts: all\n  become: true\n")
    changed = trigger()
    assert changed != first
    (tmp_path / "dashboards" / "new.json").write_text("{}")
    assert trigger() != changed


def test_content_hash_ignores_caches_and_files_outside_the_inputs(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = content_hash(tmp_path)
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "config" / "stale.pyc").write_bytes(b"\0")
    (tmp_path / "README.md").write_text("not shipped")
    assert content_hash(tmp_path) == before


def test_content_hash_depends_on_paths_not_only_contents(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = content_hash(tmp_path)
    shutil.move(tmp_path / "app" / "sub" / "file.txt", tmp_path / "app" / "sub" / "renamed.txt")
    assert content_hash(tmp_path) != before


def test_content_hash_is_independent_of_creation_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root, names in ((first, ["x", "y", "z"]), (second, ["z", "x", "y"])):
        for name in names:
            (root / "config").mkdir(parents=True, exist_ok=True)
            (root / "config" / name).write_text(name)
    assert content_hash(first) == content_hash(second)


def test_environment_names_are_the_ones_the_entry_point_reads() -> None:
    from stacks import provision_env

    assert set(provision_env.SECRET_ENV) == set(SECRET_ENV)


def test_compose_and_dependency_pins_are_provisioning_inputs(tmp_path: Path) -> None:
    """The stack is also built from deploy/ and the lock file: changing them must re-provision."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yml").write_text("services: {}\n")
    (tmp_path / "constraints.txt").write_text("flask==3.1.3\n")
    before = content_hash(tmp_path)
    (tmp_path / "constraints.txt").write_text("flask==3.1.4\n")
    after_pins = content_hash(tmp_path)
    assert after_pins != before
    (tmp_path / "deploy" / "compose.yml").write_text("services: {api: {}}\n")
    assert content_hash(tmp_path) != after_pins


@pytest.mark.parametrize(("public", "expected"), [(["api", "grafana"], ["grafana"]), (["api"], [])])
def test_grafana_is_bound_publicly_only_when_the_stack_makes_it_public(
    public: list[str], expected: list[str]
) -> None:
    """The firewall opens Grafana only if configured; the host must bind it to match, no more."""
    config = engine_config(stack_files()[0], {"mlops-platform:publicServices": public})
    argv = shlex.split(run_program(config).one(LOCAL_COMMAND).inputs["create"])
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--public"] == expected


def test_a_domain_reaches_the_entry_point_and_the_outputs() -> None:
    """With a domain the edge gets its certificate over ACME; clients are told the domain's URL."""
    config = engine_config(
        stack_files()[0],
        {"mlops-platform:domain": "api.example.com", "mlops-platform:acmeEmail": "ops@example.com"},
    )
    deployment = run_program(config)
    argv = shlex.split(deployment.one(LOCAL_COMMAND).inputs["create"])
    options = dict(itertools.pairwise(argv))
    assert options["--domain"] == "api.example.com"
    assert options["--acme-email"] == "ops@example.com"
    assert options["--acme-server"] == edge.LETS_ENCRYPT_DIRECTORY
    assert deployment.outputs["apiUrl"] == "https://api.example.com/"
    assert "ACME" in deployment.outputs["tlsNote"]


def test_without_a_domain_no_acme_option_is_passed() -> None:
    deployment = run_program(engine_config(stack_files()[0]))
    argv = shlex.split(deployment.one(LOCAL_COMMAND).inputs["create"])
    assert not {"--domain", "--acme-server", "--acme-email"} & set(argv)
    assert deployment.outputs["apiUrl"] == f"https://{FAKE_IP}/"
