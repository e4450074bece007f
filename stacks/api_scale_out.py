"""Scale-out (apiReplicas > 1): the API group, its identity, egress and load balancer, declared together.

`declare_api_scale_out` is what stacks/program.py calls when `settings.scales_out`; at apiReplicas 1
nothing here is declared and the stack is the single VM, unchanged. The replicas pull the API image
by digest from Artifact Registry, so scale-out needs registry delivery (MLOPS_IMAGE_DIGESTS): a
replica has no one to ship it an image archive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from config import api_group as facts
from config.services import API_IMAGE, SERVICES
from config.stack_settings import StackConfigError, StackSettings
from stacks.access_commands import edge_url
from stacks.api_group import ApiGroup, ApiGroupArgs
from stacks.cloud_nat import CloudNat, CloudNatArgs
from stacks.image_digests import ImageDigests, artifact_repository, registry_logins
from stacks.load_balancer import LoadBalancer, LoadBalancerArgs
from stacks.naming import ReplicaIds
from stacks.network import Network
from stacks.provision_env import mlflow_api_password
from stacks.registry_access import grant_image_reads
from stacks.replica_identity import REPLICA_SCOPES, ReplicaIdentity, ReplicaIdentityArgs

NEEDS_REGISTRY = (
    "apiReplicas above 1 needs the released images by digest (environment variable "
    "MLOPS_IMAGE_DIGESTS, set by CI's release): the replicas pull the API image from Artifact "
    "Registry. Set apiReplicas to 1, or deploy with the digests."
)


@dataclass(frozen=True)
class ReplicaStartup:
    """What a replica's startup script needs to know; nothing in it is secret."""

    # The API image by digest (REGISTRY/PATH@sha256:...).
    api_image: str
    # Registries Docker logs in to with the replica's service account token (Artifact Registry's).
    registry_logins: tuple[str, ...]
    # MLflow on the management VM's internal address (reachable from the replicas only).
    mlflow_url: str
    # The MLflow password of the API's user: this exact Secret Manager version, read at start.
    password_secret_version: str


StartupScript = Callable[[ReplicaStartup], str]


@dataclass(frozen=True)
class ApiScaleOut:
    identity: ReplicaIdentity
    nat: CloudNat
    group: ApiGroup
    load_balancer: LoadBalancer
    # The zones the group spreads over: Prometheus discovers replicas per zone.
    zones: pulumi.Output[list[str]]
    outputs: dict[str, pulumi.Output[str]]


def group_zones(names: Sequence[str] | None) -> list[str]:
    """The first zones of the region, by name: the same answer on every run (a group's zones
    cannot change without replacing it), whatever a zone's status is today."""
    found = sorted(names or ())
    if len(found) < facts.GROUP_ZONE_COUNT:
        raise ValueError(
            f"the region has {len(found)} zones; the API group spreads over {facts.GROUP_ZONE_COUNT}"
        )
    return found[: facts.GROUP_ZONE_COUNT]


def replica_startup_script(startup: ReplicaStartup) -> str:
    """The replicas' startup script (stacks/replica_startup.py). Imported here, at the call: that
    module imports ReplicaStartup from this one."""
    from stacks.replica_startup import startup_script

    return startup_script(startup)


def require_registry_delivery(settings: StackSettings, digests: ImageDigests | None) -> None:
    """Refuse scale-out without digests before anything is declared."""
    if settings.scales_out and not digests:
        raise StackConfigError([NEEDS_REGISTRY])


def declare_api_scale_out(
    settings: StackSettings,
    stack: str,
    prefix: str,
    labels: dict[str, str],
    network: Network,
    mlflow_host: pulumi.Input[str],
    mlflow_admin_password: pulumi.Input[str],
    digests: ImageDigests | None,
    startup_script: StartupScript = replica_startup_script,
    after: Sequence[pulumi.Resource] = (),
) -> ApiScaleOut:
    """Everything apiReplicas > 1 adds. `after`: the APIs, and the management VM's provisioning
    (MLflow must hold the API's user before a replica logs in)."""
    require_registry_delivery(settings, digests)
    assert digests is not None  # refused above
    identity, grants = _replica_identity(
        settings, stack, prefix, labels, mlflow_admin_password, digests, after
    )
    nat = CloudNat(
        f"{prefix}-egress",
        CloudNatArgs(
            project=settings.project,
            region=settings.region,
            network=network.vpc.id,
            subnetwork=network.subnet.id,
            after=after,
        ),
    )
    zones = _group_zones(settings, after)
    script = _startup_script(digests[API_IMAGE], mlflow_host, identity, startup_script)
    # A replica's first boot needs its grants, and egress for apt.
    group = _group(settings, prefix, labels, network, zones, identity, script, [*after, *grants, nat.nat])
    load_balancer = LoadBalancer(
        f"{prefix}-lb",
        LoadBalancerArgs(
            project=settings.project,
            instance_group=group.manager.instance_group,
            health_check=group.health_check.id,
            domain=settings.domain,
            labels=labels,
            after=after,
        ),
    )
    return ApiScaleOut(identity, nat, group, load_balancer, zones, scale_out_outputs(settings, load_balancer))


def _replica_identity(
    settings: StackSettings,
    stack: str,
    prefix: str,
    labels: dict[str, str],
    mlflow_admin_password: pulumi.Input[str],
    digests: ImageDigests,
    after: Sequence[pulumi.Resource],
) -> tuple[ReplicaIdentity, list[pulumi.Resource]]:
    """The replicas' account and secret, and every grant a replica needs before its first boot."""
    ids = ReplicaIds.of(stack)
    identity = ReplicaIdentity(
        f"{prefix}-replica",
        ReplicaIdentityArgs(
            project=settings.project,
            service_account_id=ids.service_account,
            secret_id=ids.secret,
            mlflow_api_password=pulumi.Output.secret(mlflow_admin_password).apply(mlflow_api_password),
            labels=labels,
            after=after,
        ),
    )
    grants: list[pulumi.Resource] = [*identity.grants]
    repository = artifact_repository(digests)
    if repository is not None:
        grants.append(
            grant_image_reads(f"{prefix}-replica", repository, identity.service_account.email, after)
        )
    return identity, grants


def _group_zones(settings: StackSettings, after: Sequence[pulumi.Resource]) -> pulumi.Output[list[str]]:
    # After the APIs: on a fresh project the Compute API is switched on by this same `pulumi up`.
    lookup = pulumi.InvokeOutputOptions(depends_on=list(after))
    zones = gcp.compute.get_zones_output(project=settings.project, region=settings.region, opts=lookup)
    return zones.names.apply(group_zones)


def _startup_script(
    image: str, mlflow_host: pulumi.Input[str], identity: ReplicaIdentity, startup_script: StartupScript
) -> pulumi.Output[str]:
    return pulumi.Output.all(mlflow_host, identity.secret_version.name).apply(
        lambda values: startup_script(
            ReplicaStartup(
                api_image=image,
                registry_logins=tuple(registry_logins({API_IMAGE: image})),
                mlflow_url=f"http://{values[0]}:{SERVICES.mlflow.port}",
                password_secret_version=values[1],
            )
        )
    )


def _group(
    settings: StackSettings,
    prefix: str,
    labels: dict[str, str],
    network: Network,
    zones: pulumi.Output[list[str]],
    identity: ReplicaIdentity,
    script: pulumi.Output[str],
    after: Sequence[pulumi.Resource],
) -> ApiGroup:
    return ApiGroup(
        f"{prefix}-api",
        ApiGroupArgs(
            project=settings.project,
            region=settings.region,
            zones=zones,
            machine_type=settings.api_machine_type,
            boot_image=settings.boot_image,
            boot_disk_size_gb=settings.boot_disk_size_gb,
            subnetwork=network.subnet.self_link,
            service_account_email=identity.service_account.email,
            scopes=REPLICA_SCOPES,
            startup_script=script,
            min_replicas=settings.min_api_replicas,
            max_replicas=settings.max_api_replicas,
            target_cpu_percent=settings.api_target_cpu_percent,
            labels=labels,
            after=after,
        ),
    )


def scale_out_outputs(settings: StackSettings, load_balancer: LoadBalancer) -> dict[str, pulumi.Output[str]]:
    ip = load_balancer.address.address
    host = pulumi.Output.from_input(settings.domain) if settings.domain else ip
    return {"apiLoadBalancerIp": ip, "apiUrl": host.apply(edge_url)}
