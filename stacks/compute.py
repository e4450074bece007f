"""The compute concern: a least-privilege service account, a static IP and a hardened VM."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

# Only what the Ops Agent needs to ship logs and metrics: no editor role, no default account.
SERVICE_ACCOUNT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
# Narrow OAuth scopes matching those roles; never `cloud-platform` (CIS GCP 4.2).
SERVICE_ACCOUNT_SCOPES = (
    "https://www.googleapis.com/auth/logging.write",
    "https://www.googleapis.com/auth/monitoring.write",
)
BOOT_DISK_TYPE = "pd-balanced"


@dataclass(frozen=True)
class ComputeArgs:
    project: str
    region: str
    zone: str
    name_prefix: str
    machine_type: str
    boot_image: str
    boot_disk_size_gb: int
    subnetwork: pulumi.Input[str]
    vm_tag: str
    ssh_keys_metadata: pulumi.Input[str]
    labels: dict[str, str] = field(default_factory=dict)
    spot: bool = False
    deletion_protection: bool = False


def instance_metadata(ssh_keys: str) -> dict[str, str]:
    """Instance metadata that hardens SSH and the console; values are strings as GCE wants."""
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

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Compute", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=args.project,
            account_id=f"{args.name_prefix}-vm",
            display_name="MLOps platform VM (logs and metrics only)",
            opts=child,
        )
        self.role_bindings = self._role_bindings(name, args.project, child)
        self.address = gcp.compute.Address(
            f"{name}-ip",
            project=args.project,
            region=args.region,
            address_type="EXTERNAL",
            labels=args.labels,
            opts=child,
        )
        self.instance = self._instance(name, args)
        self.register_outputs({"external_ip": self.address.address, "instance_id": self.instance.id})

    def _role_bindings(
        self, name: str, project: str, child: pulumi.ResourceOptions
    ) -> list[gcp.projects.IAMMember]:
        member = self.service_account.email.apply(lambda email: f"serviceAccount:{email}")
        return [
            gcp.projects.IAMMember(
                f"{name}-{role.split('/')[-1].lower()}", project=project, role=role, member=member, opts=child
            )
            for role in SERVICE_ACCOUNT_ROLES
        ]

    def _instance(self, name: str, args: ComputeArgs) -> gcp.compute.Instance:
        metadata = pulumi.Output.from_input(args.ssh_keys_metadata).apply(instance_metadata)
        return gcp.compute.Instance(
            f"{name}-vm",
            project=args.project,
            zone=args.zone,
            machine_type=args.machine_type,
            tags=[args.vm_tag],
            labels=args.labels,
            boot_disk=boot_disk(args),
            network_interfaces=[
                gcp.compute.InstanceNetworkInterfaceArgs(
                    subnetwork=args.subnetwork,
                    access_configs=[
                        gcp.compute.InstanceNetworkInterfaceAccessConfigArgs(nat_ip=self.address.address)
                    ],
                )
            ],
            service_account=gcp.compute.InstanceServiceAccountArgs(
                email=self.service_account.email, scopes=list(SERVICE_ACCOUNT_SCOPES)
            ),
            shielded_instance_config=gcp.compute.InstanceShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True
            ),
            can_ip_forward=False,
            metadata=metadata,
            scheduling=scheduling(args.spot),
            deletion_protection=args.deletion_protection,
            # Changing the machine type or service account needs a stop; allow it instead of failing.
            allow_stopping_for_update=True,
            # The roles must exist before the VM's agents start writing logs and metrics.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.role_bindings),
        )
