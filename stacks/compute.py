"""The compute concern: a least-privilege service account, a static IP and a hardened VM.

Replacing the VM (a `spot` toggle, a boot image outside its family, a new gcp:zone) deletes the
old instance before creating the new one (delete_before_replace): the new VM asks for the static
address and the data disk, which GCE gives to one instance at a time, and for its fixed name.
The address itself needs nothing: it is its own resource, unchanged by a VM replacement, and is
free again as soon as the old VM is gone (its access config holds it only while the VM exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from config.stack_layout import DATA_DISK_DEVICE_NAME
from stacks.apis import child_options
from stacks.host_key import GUEST_ATTRIBUTES_METADATA, instance_host_key

# Project roles: only what the Ops Agent needs to ship logs and metrics (no editor role, no
# default account). Its one other grant is object creation on the backup bucket (that bucket's
# IAM, stacks/backup_bucket.py).
SERVICE_ACCOUNT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
# Narrow OAuth scopes matching those grants; never `cloud-platform` (CIS GCP 4.2). Cloud Storage
# has no write-only scope: read_write is the narrowest that uploads, and IAM (object creator on
# one bucket) is what limits the account to creating objects there.
SERVICE_ACCOUNT_SCOPES = (
    "https://www.googleapis.com/auth/logging.write",
    "https://www.googleapis.com/auth/monitoring.write",
    "https://www.googleapis.com/auth/devstorage.read_write",
)
BOOT_DISK_TYPE = "pd-balanced"
# With an API group (apiReplicas > 1), Prometheus on this VM lists the group's instances
# (gce_sd_configs): read-only Compute access, as a role and as the matching OAuth scope. Adding
# the scope to a running VM stops and starts it once (allow_stopping_for_update below).
REPLICA_DISCOVERY_ROLE = "roles/compute.viewer"
REPLICA_DISCOVERY_SCOPE = "https://www.googleapis.com/auth/compute.readonly"


@dataclass(frozen=True)
class ComputeArgs:
    project: str
    region: str
    zone: str
    # GCP ids spelled out per stack (stacks/naming.py).
    service_account_id: str
    instance_name: str
    machine_type: str
    boot_image: str
    boot_disk_size_gb: int
    subnetwork: pulumi.Input[str]
    vm_tag: str
    ssh_keys_metadata: pulumi.Input[str]
    # The data disk's self link, attached under config's device name.
    data_disk: pulumi.Input[str]
    labels: dict[str, str] = field(default_factory=dict)
    spot: bool = False
    deletion_protection: bool = False
    # Prometheus discovers the API group's replicas from this VM (apiReplicas > 1).
    discovers_replicas: bool = False
    # The project's APIs: every resource here waits for them.
    after: Sequence[pulumi.Resource] = ()


def service_account_scopes(discovers_replicas: bool) -> list[str]:
    return [*SERVICE_ACCOUNT_SCOPES, *((REPLICA_DISCOVERY_SCOPE,) if discovers_replicas else ())]


def instance_metadata(ssh_keys: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """Instance metadata that hardens SSH and the console; values are strings as GCE wants.

    A plain map with only `ssh-keys` an Output: at a first preview the generated key is unknown,
    and a whole-map Output would hide every hardening key below from the policy pack.
    """
    return {
        # Only the keys below may log in, not keys an admin once put in project metadata (CIS 4.3).
        "block-project-ssh-keys": "true",
        # No interactive serial console: it bypasses the firewall (CIS 4.5).
        "serial-port-enable": "false",
        # OS Login off for this instance: provisioning logs in with the ED25519 key Pulumi generated
        # and keeps in its state, so `pulumi up` needs no Google identity with
        # roles/compute.osAdminLogin and works the same against the local test host. With OS Login
        # on, GCE ignores `ssh-keys` metadata and that key would be refused. SSH stays restricted
        # by the firewall to the configured admin ranges.
        "enable-oslogin": "FALSE",
        # The guest agent publishes the SSH host keys as guest attributes (stacks/host_key.py).
        GUEST_ATTRIBUTES_METADATA: "TRUE",
        "ssh-keys": ssh_keys,
    }


def scheduling(spot: bool) -> gcp.compute.InstanceSchedulingArgs:
    if spot:
        # Spot VMs must not restart automatically; STOP keeps the disk (and MLflow's data).
        return gcp.compute.InstanceSchedulingArgs(
            provisioning_model="SPOT",
            preemptible=True,
            automatic_restart=False,
            instance_termination_action="STOP",
        )
    return gcp.compute.InstanceSchedulingArgs(
        provisioning_model="STANDARD", automatic_restart=True, on_host_maintenance="MIGRATE"
    )


def boot_disk(args: ComputeArgs) -> gcp.compute.InstanceBootDiskArgs:
    return gcp.compute.InstanceBootDiskArgs(
        auto_delete=True,
        initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
            image=args.boot_image, size=args.boot_disk_size_gb, type=BOOT_DISK_TYPE, labels=args.labels
        ),
    )


class Compute(pulumi.ComponentResource):
    service_account: gcp.serviceaccount.Account
    role_bindings: list[gcp.projects.IAMMember]
    address: gcp.compute.Address
    instance: gcp.compute.Instance
    host_key: pulumi.Output[str]

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Compute", name, None, opts)
        child = child_options(self, args.after)
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=args.project,
            account_id=args.service_account_id,
            display_name="MLOps platform VM (logs, metrics, backup uploads)",
            opts=child,
        )
        roles = (*SERVICE_ACCOUNT_ROLES, *((REPLICA_DISCOVERY_ROLE,) if args.discovers_replicas else ()))
        self.role_bindings = self._role_bindings(name, args.project, roles, child)
        self.address = gcp.compute.Address(
            f"{name}-ip",
            project=args.project,
            region=args.region,
            address_type="EXTERNAL",
            labels=args.labels,
            # Protected with the VM: a domain's DNS record points at this address.
            opts=child_options(self, args.after, protect=args.deletion_protection),
        )
        self.instance = self._instance(name, args)
        self.host_key = instance_host_key(args.project, args.zone, self.instance.id, self.instance.name)
        self.register_outputs({"external_ip": self.address.address, "instance_id": self.instance.id})

    def _role_bindings(
        self, name: str, project: str, roles: Sequence[str], child: pulumi.ResourceOptions
    ) -> list[gcp.projects.IAMMember]:
        member = self.service_account.email.apply(lambda email: f"serviceAccount:{email}")
        return [
            gcp.projects.IAMMember(
                f"{name}-{role.split('/')[-1].lower()}", project=project, role=role, member=member, opts=child
            )
            for role in roles
        ]

    def _instance(self, name: str, args: ComputeArgs) -> gcp.compute.Instance:
        return gcp.compute.Instance(
            f"{name}-vm",
            project=args.project,
            zone=args.zone,
            # A fixed name: the boot disk takes it, which lets the size guard find that disk.
            name=args.instance_name,
            machine_type=args.machine_type,
            tags=[args.vm_tag],
            labels=args.labels,
            boot_disk=boot_disk(args),
            attached_disks=[
                # Not auto-deleted with the VM: the disk outlives any replacement of it.
                gcp.compute.InstanceAttachedDiskArgs(
                    source=args.data_disk, device_name=DATA_DISK_DEVICE_NAME, mode="READ_WRITE"
                )
            ],
            network_interfaces=[
                gcp.compute.InstanceNetworkInterfaceArgs(
                    subnetwork=args.subnetwork,
                    access_configs=[
                        gcp.compute.InstanceNetworkInterfaceAccessConfigArgs(nat_ip=self.address.address)
                    ],
                )
            ],
            service_account=gcp.compute.InstanceServiceAccountArgs(
                email=self.service_account.email, scopes=service_account_scopes(args.discovers_replicas)
            ),
            shielded_instance_config=gcp.compute.InstanceShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True
            ),
            can_ip_forward=False,
            metadata=instance_metadata(args.ssh_keys_metadata),
            scheduling=scheduling(args.spot),
            deletion_protection=args.deletion_protection,
            # Changing the machine type or service account needs a stop; allow it instead of failing.
            allow_stopping_for_update=True,
            opts=child_options(
                self,
                # The roles must exist before the VM's agents start writing logs and metrics.
                [*args.after, *self.role_bindings],
                # The old VM must release the address, the data disk and the name first.
                delete_before_replace=True,
                protect=args.deletion_protection,
            ),
        )
