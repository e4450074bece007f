"""`sshVia: iap` under the Pulumi mocks: SSH admitted from IAP's range alone, no remote wait,
the entry point told to tunnel, the IAP API on, and user commands that carry the tunnel."""

from __future__ import annotations

import shlex

import pytest

from config.ssh_access import IAP_TCP_FORWARDING_RANGE
from stacks.apis import IAP_API
from tests.support.policy_harness import violations
from tests.support.pulumi_harness import (
    FAKE_IP,
    FIREWALL,
    INSTANCE,
    LOCAL_COMMAND,
    REMOTE_COMMAND,
    SERVICE,
    TEST_GCP_PROJECT,
    Deployment,
    engine_config,
    run_program,
    stack_files,
)

IAP = {"mlops-platform:sshVia": "iap", "mlops-platform:sshSourceRanges": []}
ZONE = "europe-west1-b"


@pytest.fixture(scope="module")
def through_iap() -> Deployment:
    return run_program(engine_config(stack_files()[0], IAP))


@pytest.fixture(scope="module")
def direct() -> Deployment:
    return run_program(engine_config(stack_files()[0]))


def ssh_rules(deployment: Deployment) -> list[dict[str, object]]:
    return [
        rule.inputs
        for rule in deployment.of_type(FIREWALL)
        if any("22" in allow["ports"] for allow in rule.inputs["allows"])
    ]


def instance_name(deployment: Deployment) -> str:
    name = deployment.one(INSTANCE).inputs["name"]
    assert isinstance(name, str)
    return name


def test_ssh_is_admitted_only_from_iaps_range(through_iap: Deployment) -> None:
    (rule,) = ssh_rules(through_iap)
    assert rule["sourceRanges"] == [IAP_TCP_FORWARDING_RANGE]
    assert rule["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
    for other in through_iap.of_type(FIREWALL):
        assert violations("cis-3.6-no-ssh-from-internet", FIREWALL, other.inputs) == []


def test_the_ssh_rule_keeps_its_name_so_switching_patches_it(
    through_iap: Deployment, direct: Deployment
) -> None:
    names = {rule.name for rule in through_iap.of_type(FIREWALL)}
    assert names == {rule.name for rule in direct.of_type(FIREWALL)}
    (direct_rule,) = ssh_rules(direct)
    assert direct_rule["sourceRanges"] == ["203.0.113.0/24"]


def test_no_remote_wait_and_the_entry_point_tunnels_to_the_instance(through_iap: Deployment) -> None:
    assert through_iap.of_type(REMOTE_COMMAND) == []
    run = through_iap.one(LOCAL_COMMAND)
    argv = shlex.split(run.inputs["create"])
    at = argv.index("--via-iap")
    assert argv[at : at + 6] == [
        "--via-iap",
        instance_name(through_iap),
        "--project",
        TEST_GCP_PROJECT,
        "--zone",
        ZONE,
    ]
    # --host still names the VM by its address: the known_hosts entry and the edge's name.
    assert argv[argv.index("--host") + 1] == FAKE_IP
    # Without the wait, it runs once the firewall admits IAP's range (and the VM exists).
    assert {rule.urn for rule in through_iap.of_type(FIREWALL)} <= set(run.dependencies)
    assert through_iap.one(INSTANCE).urn in run.dependencies


def test_direct_keeps_the_wait_and_no_tunnel(direct: Deployment) -> None:
    assert len(direct.of_type(REMOTE_COMMAND)) == 1
    assert "--via-iap" not in shlex.split(direct.one(LOCAL_COMMAND).inputs["create"])


def test_the_iap_api_is_switched_on_only_when_used(through_iap: Deployment, direct: Deployment) -> None:
    apis = {service.inputs["service"] for service in through_iap.of_type(SERVICE)}
    assert IAP_API in apis
    assert IAP_API not in {service.inputs["service"] for service in direct.of_type(SERVICE)}
    (iap,) = [s for s in through_iap.of_type(SERVICE) if s.inputs["service"] == IAP_API]
    assert iap.inputs["disableOnDestroy"] is False


def proxy_command_of(command: str) -> list[str]:
    argv = shlex.split(command)
    (option,) = [arg for arg in argv if arg.startswith("ProxyCommand=")]
    return shlex.split(option.removeprefix("ProxyCommand="))


def test_user_commands_carry_the_iap_proxy_command(through_iap: Deployment) -> None:
    expected = [
        "gcloud",
        "compute",
        "start-iap-tunnel",
        instance_name(through_iap),
        "22",
        "--listen-on-stdin",
        f"--project={TEST_GCP_PROJECT}",
        f"--zone={ZONE}",
    ]
    outputs = through_iap.outputs
    ssh = outputs["sshCommand"]
    assert ssh.startswith("ssh -i ~/.ssh/mlops-dev -o ")  # `~` unquoted: the shell expands it
    assert ssh.endswith(f" deploy@{FAKE_IP}")
    assert proxy_command_of(ssh) == expected
    tunnels = [name for name in outputs if name.endswith("TunnelCommand")]
    assert tunnels
    for name in tunnels:
        assert proxy_command_of(outputs[name]) == expected
        assert " -N -L " in outputs[name]
    # The key stays pinned to the address the commands name.
    assert outputs["sshKnownHostsLine"].startswith(f"{FAKE_IP} ssh-ed25519 ")


def test_direct_user_commands_have_no_proxy(direct: Deployment) -> None:
    assert direct.outputs["sshCommand"] == f"ssh -i ~/.ssh/mlops-dev deploy@{FAKE_IP}"
    assert "ProxyCommand" not in direct.outputs["mlflowTunnelCommand"]
