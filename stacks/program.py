"""The whole stack: settings -> network -> key -> VM -> provisioning, and the outputs users need."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi

from config import edge
from config.services import SERVICES, Exposure
from config.stack_settings import StackSettings
from stacks.access_commands import edge_url, http_url, ssh_command, tunnel_command
from stacks.compute import Compute, ComputeArgs
from stacks.content_hash import content_hash
from stacks.deploy_key import DeployKey, DeployKeyArgs
from stacks.firewall_plan import planned_firewall_rules
from stacks.network import Network, NetworkArgs
from stacks.provisioning import Provisioning, ProvisioningArgs
from stacks.stack_config import load_stack_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
VM_TAG = "mlops-vm"


def name_prefix(stack: str) -> str:
    """A GCP-safe prefix from the stack name (service account ids allow 6-30 of a-z0-9-)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-")[:18].rstrip("-")
    return f"mlops-{cleaned or 'stack'}"


def resource_labels(settings: StackSettings, stack: str) -> dict[str, str]:
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", stack.lower())[:63]
    return {**settings.labels, "managed-by": "pulumi", "stack": cleaned}


@dataclass(frozen=True)
class StackOutputs:
    network: Network
    deploy_key: DeployKey
    compute: Compute
    provisioning: Provisioning
    outputs: dict[str, pulumi.Output[str]]


def deploy(settings: StackSettings, stack: str, repo_root: Path = REPO_ROOT) -> StackOutputs:
    prefix = name_prefix(stack)
    labels = resource_labels(settings, stack)
    network = Network(
        prefix,
        NetworkArgs(
            project=settings.project,
            region=settings.region,
            vm_tag=VM_TAG,
            rules=planned_firewall_rules(settings),
        ),
    )
    deploy_key = DeployKey(
        prefix, DeployKeyArgs(deploy_user=settings.deploy_user, extra_public_key=settings.ssh_public_key)
    )
    compute = Compute(
        prefix,
        ComputeArgs(
            project=settings.project,
            region=settings.region,
            zone=settings.zone,
            name_prefix=prefix,
            machine_type=settings.machine_type,
            boot_image=settings.boot_image,
            boot_disk_size_gb=settings.boot_disk_size_gb,
            subnetwork=network.subnet.self_link,
            vm_tag=VM_TAG,
            ssh_keys_metadata=deploy_key.ssh_keys_metadata,
            labels=labels,
            spot=settings.spot,
            deletion_protection=settings.deletion_protection,
        ),
    )
    ip = compute.address.address
    provisioning = Provisioning(
        prefix,
        ProvisioningArgs(
            host=ip,
            user=settings.deploy_user,
            private_key_openssh=deploy_key.private_key_openssh,
            vm_id=compute.instance.id,
            files_hash=content_hash(repo_root),
            python=sys.executable,
            repo_root=str(repo_root),
            options=provision_options(settings),
        ),
    )
    return StackOutputs(
        network=network,
        deploy_key=deploy_key,
        compute=compute,
        provisioning=provisioning,
        outputs=_outputs(settings, stack, ip, deploy_key, provisioning),
    )


def provision_options(settings: StackSettings) -> tuple[str, ...]:
    """What the entry point must know of the stack config: the optional services it makes public
    (the edge serves them) and the domain the edge gets its certificate for."""
    options: list[str] = []
    for name in sorted(settings.public_services):
        if SERVICES.by_name(name).exposure is Exposure.OPTIONAL_PUBLIC:
            options += ["--public", name]
    if settings.domain:
        options += ["--domain", settings.domain, "--acme-server", settings.acme_server]
        if settings.acme_email:
            options += ["--acme-email", settings.acme_email]
    return tuple(options)


SELF_SIGNED_NOTE = (
    "No domain set: the edge serves HTTPS with a self-signed certificate made on the VM; clients "
    "must trust it explicitly (fetch it over SSH from the edge's certificate volume). Set "
    "mlops-platform:domain for a certificate from Let's Encrypt."
)
ACME_NOTE = (
    "The edge gets its certificate for the domain over ACME HTTP-01 once the domain's A record "
    "points at externalIp, and renews it; until then it serves a self-signed one."
)


def _outputs(
    settings: StackSettings, stack: str, ip: pulumi.Output[str], key: DeployKey, provisioning: Provisioning
) -> dict[str, pulumi.Output[str]]:
    user = settings.deploy_user
    grafana = SERVICES.grafana
    # With a domain, clients use it (its certificate names it); else the VM's address.
    public_name = pulumi.Output.from_input(settings.domain) if settings.domain else ip
    if settings.service_is_public(grafana.name):
        grafana_url = public_name.apply(lambda host: edge_url(host, edge.GRAFANA_PATH))
    else:
        # Not opened in the firewall: reached through its tunnel like the internal services.
        grafana_url = pulumi.Output.from_input(http_url("localhost", grafana.port))
    outputs: dict[str, pulumi.Output[str]] = {
        "externalIp": ip,
        "apiUrl": public_name.apply(edge_url),
        "tlsNote": pulumi.Output.from_input(ACME_NOTE if settings.domain else SELF_SIGNED_NOTE),
        "grafanaUrl": grafana_url,
        "sshCommand": ip.apply(lambda host: ssh_command(stack, user, host)),
        "sshKnownHostsLine": pulumi.Output.concat(ip, " ", provisioning.host_key),
        "sshPrivateKey": key.private_key_openssh,
        "grafanaAdminPassword": provisioning.grafana_admin_password,
    }
    tunneled = [*SERVICES.internal()]
    if not settings.service_is_public(grafana.name):
        tunneled.append(grafana)
    for service in tunneled:
        outputs[f"{service.name}TunnelCommand"] = _tunnel(ip, stack, user, service.port)
    return outputs


def _tunnel(ip: pulumi.Output[str], stack: str, user: str, port: int) -> pulumi.Output[str]:
    return ip.apply(lambda host: tunnel_command(stack, user, host, port))


def main() -> None:
    """Entry point of `pulumi up`: validate the settings first, then declare and export."""
    settings = load_stack_settings()
    stack = deploy(settings, pulumi.get_stack())
    for name, value in stack.outputs.items():
        pulumi.export(name, value)
