"""The whole stack: settings -> network -> key -> VM -> provisioning, and the outputs users need."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from config import alertmanager, edge
from config.api_group import VM_TAG
from config.services import SERVICES, Exposure
from config.stack_layout import DATA_DISK_DEVICE_PATH
from config.stack_settings import StackConfigError, StackSettings
from stacks.access_commands import edge_url, http_url, ssh_command, tunnel_command
from stacks.api_scale_out import (
    StartupScript,
    declare_api_scale_out,
    replica_startup_script,
    require_registry_delivery,
)
from stacks.apis import IAP_API, SECRET_MANAGER_API, ProjectApis
from stacks.backup_bucket import BackupBucket, BackupBucketArgs
from stacks.compute import Compute, ComputeArgs
from stacks.content_hash import NotAGitCheckoutError, content_hash
from stacks.data_disk import DataDisk, DataDiskArgs
from stacks.deploy_key import DeployKey, DeployKeyArgs
from stacks.disk_guard import ExistingDisks, refuse_shrinking
from stacks.firewall_plan import needs_uptime_checker_rule, planned_firewall_rules
from stacks.iap_tunnel import IapTarget
from stacks.image_digests import (
    ImageDigests,
    ImageDigestsError,
    artifact_repository,
    digests_from_environment,
    to_json,
)
from stacks.naming import GcpIds, name_prefix, resource_labels
from stacks.network import Network, NetworkArgs
from stacks.project_file import ROOT_FROM_MAIN, VIRTUALENV_PYTHON
from stacks.provision_env import mlflow_promoter_password
from stacks.provisioning import Provisioning, ProvisioningArgs
from stacks.registry_access import grant_image_reads
from stacks.stack_config import load_stack_settings
from stacks.uptime import Uptime, UptimeArgs, UptimeTarget, uptime_checker_ips

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Infrastructure:
    """The GCP side: APIs, network, key, data disk, VM, backup bucket."""

    apis: ProjectApis
    network: Network
    deploy_key: DeployKey
    data_disk: DataDisk
    compute: Compute
    backup: BackupBucket


@dataclass(frozen=True)
class StackOutputs:
    infrastructure: Infrastructure
    provisioning: Provisioning
    outputs: dict[str, pulumi.Output[str]]


def deploy(
    settings: StackSettings,
    stack: str,
    repo_root: Path = REPO_ROOT,
    environ: Mapping[str, str] = os.environ,
    startup_script: StartupScript = replica_startup_script,
) -> StackOutputs:
    """Refuse what GCE cannot do (shrink a disk), then declare everything and the outputs."""
    digests = digests_from_environment(environ)
    require_registry_delivery(settings, digests)
    ids = GcpIds.of(stack)
    existing = ExistingDisks.look_up(settings, ids)
    refuse_shrinking(settings, existing)
    infrastructure = declare_infrastructure(settings, stack, ids, existing)
    compute = infrastructure.compute
    ip = compute.address.address
    via = iap_target(settings, ids)
    # The pull needs the grant: the options wait for it, so provisioning depends on it.
    reader_ids = image_reader_ids(name_prefix(stack), digests, infrastructure)
    options = pulumi.Output.all(
        infrastructure.backup.bucket.name, internal_address(compute), *reader_ids
    ).apply(
        lambda values: (
            *provision_options(settings, digests),
            *iap_options(via),
            *host_options(values[0]),
            *mlflow_options(settings, values[1]),
        )
    )
    provisioning = Provisioning(
        name_prefix(stack),
        ProvisioningArgs(
            host=ip,
            user=settings.deploy_user,
            private_key_openssh=infrastructure.deploy_key.private_key_openssh,
            host_key=compute.host_key,
            vm_id=compute.instance.id,
            files_hash=content_hash(repo_root),
            python=VIRTUALENV_PYTHON,
            dir=ROOT_FROM_MAIN,
            firewall_rules=infrastructure.network.firewall_rules,
            options=options,
            wait_for_ssh=via is None,
            protect=settings.deletion_protection,
            alertmanager_config=alertmanager.rendered_config(settings),
        ),
    )
    outputs = _outputs(settings, stack, ip, via, infrastructure, provisioning)
    if settings.scales_out:
        outputs.update(_scale_out(settings, stack, digests, infrastructure, provisioning, startup_script))
    watch_uptime(settings, stack, ip, outputs.get("apiLoadBalancerIp"), infrastructure.apis)
    return StackOutputs(infrastructure=infrastructure, provisioning=provisioning, outputs=outputs)


def declare_infrastructure(
    settings: StackSettings, stack: str, ids: GcpIds, existing: ExistingDisks
) -> Infrastructure:
    prefix = name_prefix(stack)
    labels = resource_labels(settings, stack)
    # Deletion protection also protects the stateful resources in Pulumi: `pulumi destroy` (its
    # preview first) stops at a protected resource before deleting anything. The engine's delete
    # step refuses a protected resource ahead of its preview/no-preview branch (DeleteStep.Apply
    # in pulumi/pulumi's pkg/resource/deploy/step.go), and a replacement of one is refused at
    # planning (step_generator.go: "unable to replace resource ... marked for protection").
    protect = settings.deletion_protection
    apis = ProjectApis(
        f"{prefix}-apis",
        settings.project,
        extra_apis=(
            *((IAP_API,) if settings.ssh_through_iap else ()),
            *((SECRET_MANAGER_API,) if settings.scales_out else ()),
        ),
    )
    after: Sequence[pulumi.Resource] = apis.services
    network = Network(
        prefix,
        NetworkArgs(
            project=settings.project,
            region=settings.region,
            vm_tag=VM_TAG,
            rules=planned_firewall_rules(
                settings, uptime_checker_ips() if needs_uptime_checker_rule(settings) else ()
            ),
            after=after,
        ),
    )
    deploy_key = DeployKey(
        prefix,
        DeployKeyArgs(
            deploy_user=settings.deploy_user, extra_public_key=settings.ssh_public_key, protect=protect
        ),
    )
    data_disk = _data_disk(settings, prefix, ids, existing, labels, after)
    compute = Compute(prefix, _compute_args(settings, ids, labels, network, deploy_key, data_disk, after))
    backup = _backup_bucket(settings, prefix, compute, labels, after)
    return Infrastructure(apis, network, deploy_key, data_disk, compute, backup)


def watch_uptime(
    settings: StackSettings,
    stack: str,
    vm_address: pulumi.Output[str],
    balancer_address: pulumi.Output[str] | None,
    apis: ProjectApis,
) -> Uptime:
    """Uptime checks on the public URLs, their alert policy and channels (stacks/uptime.py): the
    VM's edge (a dead VM takes Prometheus and Alertmanager with it), and the load balancer once
    the API scales out. The domain names whichever the users reach, and its certificate (ACME) is
    worth validating; a bare address gets the self-signed one."""
    domain = settings.domain
    if balancer_address is None:
        targets: tuple[UptimeTarget, ...] = (
            UptimeTarget("", "public API (VM)", domain or vm_address, domain is not None),
        )
    else:
        targets = (
            UptimeTarget("", "VM edge", vm_address, False),
            UptimeTarget("-lb", "public API (load balancer)", domain or balancer_address, domain is not None),
        )
    return Uptime(
        name_prefix(stack),
        UptimeArgs(
            project=settings.project,
            targets=targets,
            email=settings.alert_email_to,
            webhook_url=settings.alert_webhook_url,
            labels=resource_labels(settings, stack),
            # monitoring.googleapis.com is among the project's required APIs.
            after=apis.services,
        ),
    )


def _scale_out(
    settings: StackSettings,
    stack: str,
    digests: ImageDigests | None,
    infrastructure: Infrastructure,
    provisioning: Provisioning,
    startup_script: StartupScript,
) -> dict[str, pulumi.Output[str]]:
    """apiReplicas > 1: the API group behind its load balancer; its outputs replace `apiUrl`."""
    scale_out = declare_api_scale_out(
        settings,
        stack,
        name_prefix(stack),
        resource_labels(settings, stack),
        infrastructure.network,
        # MLflow on the management VM's internal address; its firewall admits the replicas only.
        mlflow_host=internal_address(infrastructure.compute),
        mlflow_admin_password=provisioning.mlflow_admin_password,
        digests=digests,
        startup_script=startup_script,
        # Replicas log in to MLflow as the API's user, which provisioning creates.
        after=[*infrastructure.apis.services, provisioning],
    )
    return {**scale_out.outputs, "apiZones": scale_out.zones.apply(",".join)}


def _data_disk(
    settings: StackSettings,
    prefix: str,
    ids: GcpIds,
    existing: ExistingDisks,
    labels: dict[str, str],
    after: Sequence[pulumi.Resource],
) -> DataDisk:
    return DataDisk(
        prefix,
        DataDiskArgs(
            project=settings.project,
            region=settings.region,
            zone=settings.zone,
            name=ids.data_disk,
            size_gb=settings.data_disk_size_gb,
            disk_type=settings.data_disk_type,
            snapshot_retention_days=settings.snapshot_retention_days,
            retain=settings.retain_data_disk,
            protect=settings.deletion_protection,
            labels=labels,
            existing_id=existing.data.id if existing.data else None,
            after=after,
        ),
    )


def _backup_bucket(
    settings: StackSettings,
    prefix: str,
    compute: Compute,
    labels: dict[str, str],
    after: Sequence[pulumi.Resource],
) -> BackupBucket:
    return BackupBucket(
        prefix,
        BackupBucketArgs(
            project=settings.project,
            region=settings.region,
            writer_email=compute.service_account.email,
            retention_days=settings.backup_retention_days,
            retain=settings.retain_data_disk,
            protect=settings.deletion_protection,
            labels=labels,
            after=after,
        ),
    )


def _compute_args(
    settings: StackSettings,
    ids: GcpIds,
    labels: dict[str, str],
    network: Network,
    deploy_key: DeployKey,
    data_disk: DataDisk,
    after: Sequence[pulumi.Resource],
) -> ComputeArgs:
    return ComputeArgs(
        project=settings.project,
        region=settings.region,
        zone=settings.zone,
        service_account_id=ids.service_account,
        instance_name=ids.instance,
        machine_type=settings.machine_type,
        boot_image=settings.boot_image,
        boot_disk_size_gb=settings.boot_disk_size_gb,
        subnetwork=network.subnet.self_link,
        vm_tag=VM_TAG,
        ssh_keys_metadata=deploy_key.ssh_keys_metadata,
        data_disk=data_disk.disk.self_link,
        labels=labels,
        spot=settings.spot,
        deletion_protection=settings.deletion_protection,
        discovers_replicas=settings.scales_out,
        after=after,
    )


def image_reader_ids(
    prefix: str, digests: ImageDigests | None, infrastructure: Infrastructure
) -> list[pulumi.Output[str]]:
    """With images in Artifact Registry, the VM's account may read their repository."""
    repository = artifact_repository(digests) if digests else None
    if repository is None:
        return []
    after = infrastructure.apis.services
    member = grant_image_reads(prefix, repository, infrastructure.compute.service_account.email, after)
    return [member.id]


def iap_target(settings: StackSettings, ids: GcpIds) -> IapTarget | None:
    """Where IAP forwards SSH to with `sshVia: iap`; None when SSH dials the VM's address."""
    if not settings.ssh_through_iap:
        return None
    return IapTarget(instance=ids.instance, project=settings.project, zone=settings.zone)


def iap_options(via: IapTarget | None) -> tuple[str, ...]:
    """The entry point's SSH route: through IAP to the instance, or (no option) direct."""
    if via is None:
        return ()
    return ("--via-iap", via.instance, "--project", via.project, "--zone", via.zone)


def host_options(backup_bucket: str) -> tuple[str, ...]:
    """Where the host keeps its data (the attached data disk) and sends its backups."""
    return ("--data-disk-device", DATA_DISK_DEVICE_PATH, "--backup-target", f"gs://{backup_bucket}")


def internal_address(compute: Compute) -> pulumi.Output[str]:
    """The VM's address inside the VPC (the API replicas reach MLflow there)."""
    return compute.instance.network_interfaces.apply(lambda nics: nics[0].network_ip or "")


def mlflow_options(settings: StackSettings, internal_ip: str) -> tuple[str, ...]:
    """With the API group, MLflow is published on the management VM's internal address too (the
    firewall admits only the replicas to its port); without it, on loopback only."""
    if not settings.scales_out:
        return ()
    return ("--mlflow-bind-address", internal_ip)


def provision_options(settings: StackSettings, digests: ImageDigests | None = None) -> tuple[str, ...]:
    """What the entry point must know of the stack config: the optional services it makes public
    (the edge serves them), the domain the edge gets its certificate for, and the released images
    by digest when CI gives them (else it builds and ships an archive)."""
    options: list[str] = []
    if digests:
        # Inline JSON, not a file: the command line is the provisioning trigger, so a new digest
        # re-provisions. Four references are some 500 characters, far below any argv limit.
        options += ["--image-delivery", "registry", "--image-digests", to_json(digests)]
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
    settings: StackSettings,
    stack: str,
    ip: pulumi.Output[str],
    via: IapTarget | None,
    infrastructure: Infrastructure,
    provisioning: Provisioning,
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
        "sshCommand": ip.apply(lambda host: ssh_command(stack, user, host, via)),
        "sshKnownHostsLine": pulumi.Output.concat(ip, " ", provisioning.host_key),
        "sshPrivateKey": infrastructure.deploy_key.private_key_openssh,
        "grafanaAdminPassword": provisioning.grafana_admin_password,
        # The MLflow tunnel ends at MLflow's login (user `admin`): its password, kept secret.
        "mlflowAdminPassword": provisioning.mlflow_admin_password,
        # `mlops-promote`'s MLflow login (user `promoter`, EDIT on the registered model only), for
        # whoever promotes: `pulumi stack output --show-secrets mlflowPromoterPassword`. Derived
        # from the admin's as on the VM; secret, like the admin's.
        "mlflowPromoterPassword": pulumi.Output.secret(
            provisioning.mlflow_admin_password.apply(mlflow_promoter_password)
        ),
        "backupBucket": infrastructure.backup.bucket.name,
    }
    tunneled = [*SERVICES.internal()]
    if not settings.service_is_public(grafana.name):
        tunneled.append(grafana)
    for service in tunneled:
        outputs[f"{_camel(service.name)}TunnelCommand"] = _tunnel(ip, stack, user, service.port, via)
    return outputs


def _camel(name: str) -> str:
    """A service name as an output name: `node-exporter` -> `nodeExporter`."""
    first, *rest = name.split("-")
    return first + "".join(part.capitalize() for part in rest)


def _tunnel(
    ip: pulumi.Output[str], stack: str, user: str, port: int, via: IapTarget | None
) -> pulumi.Output[str]:
    return ip.apply(lambda host: tunnel_command(stack, user, host, port, via))


def main() -> None:
    """Entry point of `pulumi up`: validate the settings first, then declare and export."""
    settings = load_stack_settings()
    try:
        stack = deploy(settings, pulumi.get_stack())
    except (StackConfigError, NotAGitCheckoutError, ImageDigestsError) as error:
        pulumi.log.error(str(error))
        # RunError ends the program with the message alone, without Pulumi's traceback dump.
        raise pulumi.RunError(str(error)) from None
    for name, value in stack.outputs.items():
        pulumi.export(name, value)
