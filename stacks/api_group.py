"""The API group (apiReplicas > 1): instance template, health check, regional MIG and autoscaler.

What happens on a real `pulumi up`:
- First: the template, the health check and the group (no instances: target_size is left to the
  autoscaler), then the autoscaler, which grows the group to its minimum. wait_for_instances is
  off: at creation the group is empty until the autoscaler exists (declared after it), so a wait
  would return at once, and on a later update it would hold `pulumi up` for a whole rolling
  replacement (boot, Docker install, image pull, model load per surge). The load balancer's health
  and the ApiReplicasBelowMinimum alert report a rollout instead.
- A changed template (new startup script, image digest, machine type, secret version): templates
  are immutable, so Pulumi creates a new one first (auto-named from `name_prefix`, no collision),
  points the group's version at it, then deletes the old one. The group then replaces its
  instances proactively: max_unavailable 0 and a surge of one replica per zone (a regional group's
  max_surge_fixed must be 0 or at least its number of zones), so serving capacity never drops.
- `pulumi destroy`: the autoscaler goes first (it depends on the group), then the group deletes its
  instances, then the template and the health check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from config import api_group as facts
from config.replica_discovery import REPLICA_TAG
from config.services import SERVICES
from stacks.apis import child_options
from stacks.compute import BOOT_DISK_TYPE


@dataclass(frozen=True)
class ApiGroupArgs:
    project: str
    region: str
    # The group's zones: the first GROUP_ZONE_COUNT of the region's (stacks/api_scale_out.py).
    zones: pulumi.Input[Sequence[str]]
    machine_type: str
    boot_image: str
    boot_disk_size_gb: int
    subnetwork: pulumi.Input[str]
    service_account_email: pulumi.Input[str]
    scopes: Sequence[str]
    # The replica's whole setup: Docker, the API image by digest, MLflow's address (part R).
    startup_script: pulumi.Input[str]
    min_replicas: int
    max_replicas: int
    target_cpu_percent: int
    labels: dict[str, str] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()


# Like the management VM's (stacks/compute.py instance_metadata), less SSH: a replica has no login
# at all (no key, no firewall rule for 22), so nothing here depends on a key.
REPLICA_METADATA = {
    "block-project-ssh-keys": "true",
    "serial-port-enable": "false",
    "enable-oslogin": "TRUE",
}


def template_args(args: ApiGroupArgs, name_prefix: str) -> gcp.compute.InstanceTemplateArgs:
    """The instance template's arguments: Debian, no public address, Shielded VM, own account."""
    return gcp.compute.InstanceTemplateArgs(
        project=args.project,
        # Auto-named (prefix + timestamp): a replacement is created before the old one is deleted.
        name_prefix=name_prefix,
        machine_type=args.machine_type,
        tags=[REPLICA_TAG],
        labels=args.labels,
        disks=[
            gcp.compute.InstanceTemplateDiskArgs(
                boot=True,
                auto_delete=True,
                source_image=args.boot_image,
                disk_size_gb=args.boot_disk_size_gb,
                disk_type=BOOT_DISK_TYPE,
                labels=args.labels,
            )
        ],
        # No access_configs: no external address. Egress goes through Cloud NAT, Google APIs
        # through Private Google Access (stacks/cloud_nat.py, stacks/network.py).
        network_interfaces=[gcp.compute.InstanceTemplateNetworkInterfaceArgs(subnetwork=args.subnetwork)],
        service_account=gcp.compute.InstanceTemplateServiceAccountArgs(
            email=args.service_account_email, scopes=list(args.scopes)
        ),
        shielded_instance_config=gcp.compute.InstanceTemplateShieldedInstanceConfigArgs(
            enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True
        ),
        can_ip_forward=False,
        metadata=REPLICA_METADATA,
        metadata_startup_script=args.startup_script,
        scheduling=gcp.compute.InstanceTemplateSchedulingArgs(
            provisioning_model="STANDARD", automatic_restart=True, on_host_maintenance="MIGRATE"
        ),
    )


def update_policy() -> gcp.compute.RegionInstanceGroupManagerUpdatePolicyArgs:
    return gcp.compute.RegionInstanceGroupManagerUpdatePolicyArgs(
        type="PROACTIVE",
        minimal_action="REPLACE",
        max_unavailable_fixed=0,
        max_surge_fixed=facts.GROUP_ZONE_COUNT,
        instance_redistribution_type="PROACTIVE",
    )


class ApiGroup(pulumi.ComponentResource):
    template: gcp.compute.InstanceTemplate
    health_check: gcp.compute.HealthCheck
    manager: gcp.compute.RegionInstanceGroupManager
    autoscaler: gcp.compute.RegionAutoscaler

    def __init__(self, name: str, args: ApiGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:ApiGroup", name, None, opts)
        child = child_options(self, args.after)
        self.template = gcp.compute.InstanceTemplate(
            f"{name}-template", template_args(args, f"{name}-"), opts=child
        )
        self.health_check = gcp.compute.HealthCheck(
            f"{name}-ready",
            project=args.project,
            description="The API's /ready: the load balancer's backend health and autohealing.",
            check_interval_sec=facts.HEALTH_CHECK_INTERVAL_SECONDS,
            timeout_sec=facts.HEALTH_CHECK_TIMEOUT_SECONDS,
            healthy_threshold=facts.HEALTHY_THRESHOLD,
            unhealthy_threshold=facts.UNHEALTHY_THRESHOLD,
            http_health_check=gcp.compute.HealthCheckHttpHealthCheckArgs(
                port=SERVICES.api.port, request_path=SERVICES.api.health_path
            ),
            opts=child,
        )
        self.manager = self._manager(name, args, child)
        self.autoscaler = gcp.compute.RegionAutoscaler(
            f"{name}-autoscaler",
            project=args.project,
            region=args.region,
            target=self.manager.id,
            autoscaling_policy=gcp.compute.RegionAutoscalerAutoscalingPolicyArgs(
                min_replicas=args.min_replicas,
                max_replicas=args.max_replicas,
                # A new replica's CPU is the boot's, not the API's: ignored for this long.
                cooldown_period=facts.BOOT_SECONDS,
                cpu_utilization=gcp.compute.RegionAutoscalerAutoscalingPolicyCpuUtilizationArgs(
                    target=args.target_cpu_percent / 100
                ),
                mode="ON",
            ),
            opts=child,
        )
        self.register_outputs({"instance_group": self.manager.instance_group})

    def _manager(
        self, name: str, args: ApiGroupArgs, child: pulumi.ResourceOptions
    ) -> gcp.compute.RegionInstanceGroupManager:
        return gcp.compute.RegionInstanceGroupManager(
            f"{name}-group",
            project=args.project,
            region=args.region,
            # Per stack: two stacks' groups in one project never draw the same instance name.
            base_instance_name=name,
            distribution_policy_zones=args.zones,
            distribution_policy_target_shape="EVEN",
            named_ports=[
                gcp.compute.RegionInstanceGroupManagerNamedPortArgs(
                    name=facts.NAMED_PORT, port=SERVICES.api.port
                )
            ],
            # self_link_unique names this exact template: a replaced template is a new version.
            versions=[
                gcp.compute.RegionInstanceGroupManagerVersionArgs(
                    name="api", instance_template=self.template.self_link_unique
                )
            ],
            auto_healing_policies=gcp.compute.RegionInstanceGroupManagerAutoHealingPoliciesArgs(
                health_check=self.health_check.id, initial_delay_sec=facts.BOOT_SECONDS
            ),
            update_policy=update_policy(),
            # No target_size: the autoscaler owns the group's size.
            wait_for_instances=False,
            opts=child,
        )
