"""Provisioning wiring: wait for SSH, then run the entry point with secrets only in its environment."""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path

import pytest

from config import edge
from config.alert_receivers import SECRET_RECEIVER_KEYS
from config.stack_layout import DATA_DISK_DEVICE_PATH
from stacks import host_key
from stacks.content_hash import content_hash
from stacks.naming import GcpIds
from tests.support.git_checkout import make_checkout
from tests.support.policy_harness import SECRET_SIGNATURE, unwrap_secrets
from tests.support.pulumi_harness import (
    FAKE_HOST_KEY,
    FAKE_IP,
    FAKE_PRIVATE_KEY,
    FIREWALL,
    GET_GUEST_ATTRIBUTES,
    INSTANCE,
    LOCAL_COMMAND,
    RANDOM_PASSWORD,
    REMOTE_COMMAND,
    REPO_ROOT,
    Deployment,
    RecordingMocks,
    engine_config,
    guest_attributes,
    project_file,
    run_program,
    stack_files,
)

SECRET_ENV = (
    "MLOPS_SSH_PRIVATE_KEY",
    "MLOPS_SSH_HOST_KEY",
    "MLOPS_GRAFANA_ADMIN_PASSWORD",
    "MLOPS_MLFLOW_ADMIN_PASSWORD",
    "MLOPS_ALERTMANAGER_CONFIG",
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
    assert "systemctl is-system-running --wait" in wait.inputs["create"]
    assert wait.inputs["addPreviousOutputInEnv"] is False
    assert wait.inputs["triggers"] == [f"{deployment.one(INSTANCE).name}-id"]


def test_entry_point_gets_the_address_in_argv_and_secrets_only_in_env(deployment: Deployment) -> None:
    run = deployment.one(LOCAL_COMMAND)
    argv = shlex.split(run.inputs["create"])
    address = ["-m", "stacks.provision", "--host", FAKE_IP, "--port", "22", "--user", "deploy"]
    bucket = deployment.outputs["backupBucket"]
    host = ["--data-disk-device", DATA_DISK_DEVICE_PATH, "--backup-target", f"gs://{bucket}"]
    # Pulumi.dev.yaml makes Grafana public.
    assert argv[1:] == [*address, "--public", "grafana", *host]
    assert Path(argv[0]).name.startswith("python")
    assert run.inputs["update"] == run.inputs["create"]

    # The whole environment travels as one Pulumi secret.
    assert SECRET_SIGNATURE in run.inputs["environment"]
    environment = unwrap_secrets(run.inputs["environment"])
    assert set(environment) == set(SECRET_ENV)
    assert environment["MLOPS_SSH_PRIVATE_KEY"] == FAKE_PRIVATE_KEY
    assert environment["MLOPS_SSH_HOST_KEY"] == FAKE_HOST_KEY  # published by GCE, never scanned
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


def test_ssh_is_tried_only_once_the_firewall_rules_exist(deployment: Deployment) -> None:
    wait = deployment.one(REMOTE_COMMAND)
    rules = deployment.of_type(FIREWALL)
    assert {rule.name for rule in rules} >= {"mlops-dev-allow-ssh", "mlops-dev-allow-edge"}
    assert {rule.urn for rule in rules} <= set(wait.dependencies)


def test_the_host_key_comes_from_the_instances_guest_attributes(deployment: Deployment) -> None:
    """GCE publishes the key (guest agent, `hostkeys/ssh-ed25519`): nothing trusts on first contact."""
    vm = deployment.one(INSTANCE)
    assert vm.inputs["metadata"]["enable-guest-attributes"] == "TRUE"
    (call,) = [args for token, args in deployment.calls if token == GET_GUEST_ATTRIBUTES]
    assert call == {
        "name": vm.inputs["name"],
        "zone": vm.inputs["zone"],
        "project": vm.inputs["project"],
        "queryPath": "hostkeys/",
    }
    connection = unwrap_secrets(deployment.one(REMOTE_COMMAND).inputs["connection"])
    # pulumi-command parses it with ssh.ParseAuthorizedKey: `type base64`.
    assert connection["hostKey"] == FAKE_HOST_KEY
    environment = unwrap_secrets(deployment.one(LOCAL_COMMAND).inputs["environment"])
    assert environment["MLOPS_SSH_HOST_KEY"] == FAKE_HOST_KEY
    assert deployment.outputs["sshKnownHostsLine"] == f"{FAKE_IP} {FAKE_HOST_KEY}"


def test_a_key_published_late_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_key, "POLL_DELAY_SECONDS", 0)
    answers = iter([guest_attributes(None), {}, guest_attributes()])
    mocks = RecordingMocks({GET_GUEST_ATTRIBUTES: lambda _args: next(answers)})
    deployment = run_program(engine_config(stack_files()[0]), mocks=mocks)
    assert len([token for token, _ in deployment.calls if token == GET_GUEST_ATTRIBUTES]) == 3
    assert unwrap_secrets(deployment.one(REMOTE_COMMAND).inputs["connection"])["hostKey"] == FAKE_HOST_KEY


def test_a_key_never_published_stops_with_the_instance_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_key, "POLL_DELAY_SECONDS", 0)
    monkeypatch.setattr(host_key, "POLL_ATTEMPTS", 4)
    mocks = RecordingMocks({GET_GUEST_ATTRIBUTES: lambda _args: guest_attributes(None)})
    with pytest.raises(host_key.HostKeyMissingError) as caught:
        run_program(engine_config(stack_files()[0]), mocks=mocks)
    instance = GcpIds.of("dev").instance
    assert f"instance {instance} in europe-west1-b published no ssh-ed25519 host key" in str(caught.value)
    assert len([token for token, _ in mocks.calls if token == GET_GUEST_ATTRIBUTES]) == 4


def test_nothing_is_read_at_a_first_preview() -> None:
    """At preview the instance has no name yet: no guest attribute read, the key stays unknown."""
    mocks = RecordingMocks(computed=False)
    run_program(engine_config(stack_files()[0]), mocks=mocks, preview=True)
    assert not [token for token, _ in mocks.calls if token == GET_GUEST_ATTRIBUTES]


def test_triggers_are_the_files_hash_and_the_vm_id(deployment: Deployment) -> None:
    run = deployment.one(LOCAL_COMMAND)
    assert run.inputs["triggers"] == [content_hash(REPO_ROOT), f"{deployment.one(INSTANCE).name}-id"]


def test_the_command_names_no_path_of_this_machine(deployment: Deployment) -> None:
    """Another checkout or machine must see the same inputs, or every `pulumi up` re-provisions."""
    run = deployment.one(LOCAL_COMMAND)
    argv = shlex.split(run.inputs["create"])
    assert argv[0] == ".venv/bin/python"
    # The one absolute path is the data disk's device on the VM, from config/.
    assert [part for part in argv if Path(part).is_absolute()] == [DATA_DISK_DEVICE_PATH]
    assert str(REPO_ROOT) not in run.inputs["create"]
    # The provider starts in the program's folder (`main`); `dir` leads from there to the repo root.
    assert not Path(run.inputs["dir"]).is_absolute()
    main = project_file()["main"]
    assert (REPO_ROOT / main / run.inputs["dir"]).resolve() == REPO_ROOT
    assert (REPO_ROOT / run.inputs["dir"]).resolve() != REPO_ROOT  # relative to main, not the root
    venv = project_file()["runtime"]["options"]["virtualenv"]
    assert argv[0] == f"{venv}/bin/python"


def test_a_changed_tracked_file_changes_the_trigger_and_an_untracked_one_does_not(tmp_path: Path) -> None:
    config = engine_config(stack_files()[0])
    root = make_checkout(tmp_path / "repo")

    def trigger() -> str:
        value = run_program(config, repo_root=root).one(LOCAL_COMMAND).inputs["triggers"][0]
        assert isinstance(value, str)
        return value

    first = trigger()
    (root / "playbooks" / "untracked.yml").write_text("- hosts: all\n")
    assert trigger() == first
    (root / "stacks" / "provision.py").write_text("# the entry point changed\n")
    assert trigger() != first


def test_environment_names_are_the_ones_the_entry_point_reads() -> None:
    from stacks import provision_env

    assert set(provision_env.SECRET_ENV) == set(SECRET_ENV)


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


def test_alertmanager_config_without_receivers_alerts_no_one(deployment: Deployment) -> None:
    environment = unwrap_secrets(deployment.one(LOCAL_COMMAND).inputs["environment"])
    config = json.loads(environment["MLOPS_ALERTMANAGER_CONFIG"])
    assert [receiver["name"] for receiver in config["receivers"]] == ["null"]
    assert config["route"]["receiver"] == "null"


def test_alert_receivers_reach_the_entry_point_as_a_secret_only(monkeypatch: pytest.MonkeyPatch) -> None:
    webhook, slack, password = (
        "https://hooks.example.com/T/very-secret-webhook",
        "https://hooks.slack.com/services/T/B/very-secret-slack",
        "very-secret-smtp-password",
    )
    receivers = {
        "mlops-platform:alertWebhookUrl": webhook,
        "mlops-platform:alertSlackWebhookUrl": slack,
        "mlops-platform:alertEmailTo": "oncall@example.com",
        "mlops-platform:alertEmailFrom": "alerts@example.com",
        "mlops-platform:alertSmtpSmarthost": "smtp.example.com:587",
        "mlops-platform:alertSmtpUsername": "alerts",
        "mlops-platform:alertSmtpPassword": password,
    }
    secret_keys = [key for key in receivers if key.rpartition(":")[2] in SECRET_RECEIVER_KEYS]
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
    run = run_program(engine_config(stack_files()[0], receivers)).one(LOCAL_COMMAND)

    assert SECRET_SIGNATURE in run.inputs["environment"]
    config = json.loads(unwrap_secrets(run.inputs["environment"])["MLOPS_ALERTMANAGER_CONFIG"])
    (page,) = (
        receiver for receiver in config["receivers"] if receiver["name"] == config["route"]["receiver"]
    )
    assert page["webhook_configs"][0]["url"] == webhook
    assert page["slack_configs"][0]["api_url"] == slack
    assert page["email_configs"][0]["auth_password"] == password
    for secret in (webhook, slack, password):
        assert secret not in run.inputs["create"]
