"""The whole Pulumi program, run under mocks for every committed Pulumi.<stack>.yaml."""

from __future__ import annotations

import ipaddress
import runpy
from pathlib import Path

import pulumi
import pytest

from config import edge
from config.services import SERVICES, Exposure
from config.ssh_access import IAP_TCP_FORWARDING_RANGE
from config.stack_settings import parse_stack_config
from policy.cis_gcp import RULES
from stacks.compute import SERVICE_ACCOUNT_ROLES
from tests.support.policy_harness import violations
from tests.support.pulumi_harness import (
    ADDRESS,
    FAKE_IP,
    FAKE_PUBLIC_KEY,
    FIREWALL,
    IAM_MEMBER,
    INSTANCE,
    NETWORK,
    REPO_ROOT,
    SERVICE_ACCOUNT,
    SUBNETWORK,
    Deployment,
    configure_engine,
    engine_config,
    run_program,
    stack_files,
)

STACK_FILES = stack_files()


def stack_name(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


@pytest.fixture(scope="module", params=STACK_FILES, ids=stack_name)
def deployed(request: pytest.FixtureRequest) -> tuple[Deployment, dict[str, str]]:
    config = engine_config(request.param)
    return run_program(config, stack=stack_name(request.param)), config


def test_dev_and_prod_stacks_are_committed() -> None:
    assert {stack_name(path) for path in STACK_FILES} >= {"dev", "prod"}


def tcp_ports(rule: dict[str, object]) -> set[int]:
    allows = rule["allows"]
    assert isinstance(allows, list)
    assert all(allow["protocol"] == "tcp" for allow in allows)
    return {int(port) for allow in allows for port in allow["ports"]}


def test_network_is_a_custom_vpc_with_a_subnet(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, _ = deployed
    vpc = deployment.one(NETWORK)
    assert vpc.inputs["autoCreateSubnetworks"] is False
    assert vpc.inputs.get("name") != "default"
    subnet = deployment.one(SUBNETWORK)
    assert subnet.inputs["network"] == f"{vpc.name}-id"
    assert ipaddress.ip_network(subnet.inputs["ipCidrRange"]).is_private
    for rule in deployment.of_type(FIREWALL):
        assert rule.inputs["network"].endswith(vpc.name)


def test_firewall_opens_ssh_and_the_edge_only(
    deployed: tuple[Deployment, dict[str, str]],
) -> None:
    deployment, _ = deployed
    rules = deployment.of_type(FIREWALL)
    opened = {port for rule in rules for port in tcp_ports(rule.inputs)}
    assert opened == {22, edge.PUBLIC_HTTP_PORT, edge.PUBLIC_HTTPS_PORT}
    # Every service, public ones included, is reached through the edge or an SSH tunnel.
    assert opened.isdisjoint(service.port for service in SERVICES.all())
    assert 3389 not in opened


def test_ssh_only_from_admin_ranges_and_services_only_from_their_ranges(
    deployed: tuple[Deployment, dict[str, str]],
) -> None:
    deployment, config = deployed
    settings = parse_stack_config(config)
    for rule in deployment.of_type(FIREWALL):
        assert rule.inputs["direction"] == "INGRESS"
        assert rule.inputs["targetTags"] == ["mlops-vm"]
        if tcp_ports(rule.inputs) == {22}:
            expected = [IAP_TCP_FORWARDING_RANGE] if settings.ssh_through_iap else settings.ssh_source_ranges
            assert rule.inputs["sourceRanges"] == expected
            assert "0.0.0.0/0" not in rule.inputs["sourceRanges"]
        else:
            assert rule.inputs["sourceRanges"] == settings.public_source_ranges


def test_service_account_is_dedicated_with_only_log_and_metric_writer(
    deployed: tuple[Deployment, dict[str, str]],
) -> None:
    deployment, _ = deployed
    account = deployment.one(SERVICE_ACCOUNT)
    bindings = deployment.of_type(IAM_MEMBER)
    assert sorted(binding.inputs["role"] for binding in bindings) == sorted(
        ["roles/logging.logWriter", "roles/monitoring.metricWriter"]
    )
    assert set(SERVICE_ACCOUNT_ROLES) == {binding.inputs["role"] for binding in bindings}
    email = f"{account.inputs['accountId']}@test-project-123.iam.gserviceaccount.com"
    assert {binding.inputs["member"] for binding in bindings} == {f"serviceAccount:{email}"}
    vm = deployment.one(INSTANCE).inputs
    assert vm["serviceAccount"]["email"] == email
    assert not any("cloud-platform" in scope for scope in vm["serviceAccount"]["scopes"])
    assert "compute@developer" not in email


def test_vm_is_hardened(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, config = deployed
    settings = parse_stack_config(config)
    vm = deployment.one(INSTANCE).inputs
    assert vm["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableVtpm": True,
        "enableIntegrityMonitoring": True,
    }
    assert vm["canIpForward"] is False
    assert vm["metadata"]["serial-port-enable"] == "false"
    assert vm["metadata"]["block-project-ssh-keys"] == "true"
    assert vm["metadata"]["enable-oslogin"] == "FALSE"
    assert vm["machineType"] == settings.machine_type
    assert vm["zone"] == settings.zone
    assert vm["bootDisk"]["initializeParams"]["image"] == settings.boot_image
    assert vm["bootDisk"]["initializeParams"]["size"] == settings.boot_disk_size_gb
    assert vm["deletionProtection"] is settings.deletion_protection
    assert vm["tags"] == ["mlops-vm"]


def test_vm_gets_a_static_external_ip(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, _ = deployed
    assert deployment.one(ADDRESS).inputs["addressType"] == "EXTERNAL"
    (interface,) = deployment.one(INSTANCE).inputs["networkInterfaces"]
    assert interface["accessConfigs"] == [{"natIp": FAKE_IP}]


def test_ssh_keys_metadata_holds_the_generated_ed25519_key_for_the_deploy_user(
    deployed: tuple[Deployment, dict[str, str]],
) -> None:
    deployment, config = deployed
    settings = parse_stack_config(config)
    assert deployment.one("tls:index/privateKey:PrivateKey").inputs["algorithm"] == "ED25519"
    ssh_keys = deployment.one(INSTANCE).inputs["metadata"]["ssh-keys"]
    assert ssh_keys.splitlines()[0].startswith(f"{settings.deploy_user}:{FAKE_PUBLIC_KEY} ")


def test_labels_and_scheduling_follow_the_stack(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, config = deployed
    settings = parse_stack_config(config)
    vm = deployment.one(INSTANCE).inputs
    assert vm["labels"] == {**settings.labels, "managed-by": "pulumi", "stack": vm["labels"]["stack"]}
    assert deployment.one(ADDRESS).inputs["labels"] == vm["labels"]
    if settings.spot:
        assert vm["scheduling"]["provisioningModel"] == "SPOT"
        assert vm["scheduling"]["automaticRestart"] is False
    else:
        assert vm["scheduling"]["provisioningModel"] == "STANDARD"
        assert vm["scheduling"]["automaticRestart"] is True


def test_outputs_tell_how_to_reach_everything(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, config = deployed
    settings = parse_stack_config(config)
    outputs = deployment.outputs
    user = settings.deploy_user
    assert outputs["externalIp"] == FAKE_IP
    assert outputs["apiUrl"] == f"https://{FAKE_IP}/"
    assert "self-signed" in outputs["tlsNote"]
    assert outputs["sshCommand"].endswith(f" {user}@{FAKE_IP}")
    assert {"alertmanagerTunnelCommand", "nodeExporterTunnelCommand"} <= set(outputs)
    for service in SERVICES.internal():
        name = "nodeExporter" if service.name == "node-exporter" else service.name
        tunnel = outputs[f"{name}TunnelCommand"]
        assert f"-L {service.port}:127.0.0.1:{service.port} {user}@{FAKE_IP}" in tunnel
    if "grafana" in settings.public_services:
        assert outputs["grafanaUrl"] == f"https://{FAKE_IP}{edge.GRAFANA_PATH}"
    else:
        assert outputs["grafanaUrl"] == f"http://localhost:{SERVICES.grafana.port}/"
        assert "grafanaTunnelCommand" in outputs


def test_private_key_and_grafana_password_are_secret_outputs(
    deployed: tuple[Deployment, dict[str, str]],
) -> None:
    deployment, _ = deployed
    assert {"sshPrivateKey", "grafanaAdminPassword"} <= deployment.secret_outputs
    assert deployment.outputs["sshPrivateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    public = set(deployment.outputs) - deployment.secret_outputs
    assert all("PRIVATE KEY" not in str(deployment.outputs[name]) for name in public)


def test_every_resource_sits_under_its_component(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, _ = deployed
    components = {r.urn: r for r in deployment.registrations if r.type.startswith("mlops:")}
    assert {r.type for r in components.values()} == {
        "mlops:gcp:ProjectApis",
        "mlops:gcp:Network",
        "mlops:ssh:DeployKey",
        "mlops:gcp:DataDisk",
        "mlops:gcp:Compute",
        "mlops:gcp:BackupBucket",
        "mlops:provisioning:Provisioning",
        "mlops:gcp:Uptime",
    }
    for registration in deployment.registrations:
        if registration.type.startswith(("gcp:", "tls:", "random:", "command:")):
            assert registration.parent in components, registration.name


def test_every_declared_resource_passes_every_policy(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, _ = deployed
    for registration in deployment.registrations:
        for name in RULES:
            assert violations(name, registration.type, registration.inputs) == [], (name, registration.name)


def test_internal_service_exposure_is_what_the_firewall_leaves_closed() -> None:
    internal = {service.name for service in SERVICES.all() if service.exposure is Exposure.INTERNAL}
    assert internal == {"mlflow", "prometheus", "alertmanager", "node-exporter"}


def test_grafana_kept_internal_gets_no_rule_but_a_tunnel() -> None:
    config = engine_config(STACK_FILES[0], {"mlops-platform:publicServices": ["api"]})
    deployment = run_program(config)
    opened = {port for rule in deployment.of_type(FIREWALL) for port in tcp_ports(rule.inputs)}
    assert SERVICES.grafana.port not in opened
    assert f"-L {SERVICES.grafana.port}:127.0.0.1:" in deployment.outputs["grafanaTunnelCommand"]


def test_a_configured_admin_key_is_added_next_to_the_generated_key() -> None:
    admin_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIADMIN alice@laptop"
    config = engine_config(STACK_FILES[0], {"mlops-platform:sshPublicKey": admin_key})
    deployment = run_program(config)
    lines = deployment.one(INSTANCE).inputs["metadata"]["ssh-keys"].splitlines()
    assert lines == [f"deploy:{FAKE_PUBLIC_KEY} mlops-platform-deploy", f"deploy:{admin_key}"]


def test_entry_point_runs_like_the_pulumi_language_host_runs_it() -> None:
    """`main: stacks/` makes the host run the folder as __main__; it must validate, declare, export."""
    monitor = configure_engine(engine_config(STACK_FILES[0]), stack="dev")

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        runpy.run_path(str(REPO_ROOT / "stacks"), run_name="__main__")

    program()
    assert INSTANCE in {registration.type for registration in monitor.registrations}
