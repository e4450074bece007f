"""The policy pack's rules as plain validate functions (importable without starting a pack).

Each rule reads the resource's inputs as the engine sends them (camelCase property names) and
reports one violation per problem. All are mandatory: a violation stops `pulumi preview/up`.
Service ports come from config/services.py, the same source the firewall uses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from config.api_group import GOOGLE_FRONT_END_RANGES, VM_TAG
from config.replica_discovery import REPLICA_TAG
from config.services import SERVICES, Exposure
from config.stack_settings import SNAPSHOT_RETENTION_LABEL

NETWORK = "gcp:compute/network:Network"
FIREWALL = "gcp:compute/firewall:Firewall"
INSTANCE = "gcp:compute/instance:Instance"
# Every resource type that describes a VM's interfaces, account, metadata and shielding.
INSTANCE_TYPES = frozenset(
    {
        INSTANCE,
        "gcp:compute/instanceTemplate:InstanceTemplate",
        "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate",
    }
)
BUCKET = "gcp:storage/bucket:Bucket"
# Resources that grant a role on a bucket: one member, a member list, or a whole policy (JSON).
BUCKET_IAM_MEMBERS = frozenset({"gcp:storage/bucketIAMMember:BucketIAMMember"})
BUCKET_IAM_BINDINGS = frozenset({"gcp:storage/bucketIAMBinding:BucketIAMBinding"})
BUCKET_IAM_POLICY = "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
DISK = "gcp:compute/disk:Disk"
RESOURCE_POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
SSH_PORT = 22
RDP_PORT = 3389
FULL_API_SCOPES = frozenset({"cloud-platform", "https://www.googleapis.com/auth/cloud-platform"})
_DEFAULT_COMPUTE_ACCOUNT = re.compile(r"^\d+-compute@developer\.gserviceaccount\.com$")
_TCP_PROTOCOLS = frozenset({"tcp", "all", "6"})

Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes", "on"}


def _is_default_network(reference: Any) -> bool:
    text = str(reference or "")
    return text == "default" or text.endswith("/networks/default")


def _ingress_allows(props: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Allow blocks of an enabled ingress rule (egress and disabled rules open nothing)."""
    if str(props.get("direction") or "INGRESS").upper() != "INGRESS" or props.get("disabled") is True:
        return
    yield from props.get("allows") or []


def _opens_tcp_port(allow: Mapping[str, Any], port: int) -> bool:
    if str(allow.get("protocol", "")).lower() not in _TCP_PROTOCOLS:
        return False
    ports = allow.get("ports") or []
    if not ports:
        # No ports listed means every port of the protocol.
        return True
    for entry in ports:
        low, _, high = str(entry).partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False


def _from_whole_internet(props: Mapping[str, Any]) -> bool:
    for source in props.get("sourceRanges") or []:
        try:
            if ipaddress.ip_network(str(source), strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return False


def firewall_opened_ports(props: Mapping[str, Any], ports: tuple[int, ...]) -> list[int]:
    """Which of `ports` an ingress rule opens (to any source)."""
    return [port for port in ports if any(_opens_tcp_port(allow, port) for allow in _ingress_allows(props))]


# --- CIS GCP 3.1: no default network -------------------------------------------------------------


def no_default_network(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = args.props
    if args.resource_type == NETWORK:
        if props.get("name") == "default":
            report_violation(
                "A network named 'default' is the project's default network (CIS GCP 3.1).", None
            )
        if props.get("autoCreateSubnetworks") is not False:
            report_violation(
                "Auto-mode network: set autoCreateSubnetworks=False and declare subnets (CIS GCP 3.1).", None
            )
    elif args.resource_type == FIREWALL:
        if _is_default_network(props.get("network")):
            report_violation("Firewall rule on the default network (CIS GCP 3.1).", None)
    elif args.resource_type in INSTANCE_TYPES:
        for interface in props.get("networkInterfaces") or []:
            if not interface.get("subnetwork") and (
                not interface.get("network") or _is_default_network(interface.get("network"))
            ):
                report_violation("VM attached to the default network (CIS GCP 3.1).", None)


# --- CIS GCP 3.6 / 3.7 and internal services: firewall -------------------------------------------


def no_ssh_from_internet(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = args.props
    if (
        args.resource_type == FIREWALL
        and _from_whole_internet(props)
        and firewall_opened_ports(props, (SSH_PORT,))
    ):
        report_violation("SSH (22) open to 0.0.0.0/0 or ::/0; allow admin ranges only (CIS GCP 3.6).", None)


def no_rdp(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == FIREWALL and firewall_opened_ports(args.props, (RDP_PORT,)):
        report_violation("RDP (3389) is opened; these Linux VMs never need it (CIS GCP 3.7).", None)


def _source_ranges(props: Mapping[str, Any]) -> list[str]:
    return [str(source) for source in props.get("sourceRanges") or []]


def _from_stack_vms_only(props: Mapping[str, Any]) -> bool:
    """Sources named by network tag or service account, no address range: the stack's own VMs."""
    return not _source_ranges(props) and bool(props.get("sourceTags") or props.get("sourceServiceAccounts"))


def _within_google_front_ends(source: str) -> bool:
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return any(
        network.version == google.version and network.subnet_of(google)  # type: ignore[arg-type]
        for google in map(ipaddress.ip_network, GOOGLE_FRONT_END_RANGES)
    )


def _from_google_front_ends_only(props: Mapping[str, Any]) -> bool:
    sources = _source_ranges(props)
    return bool(sources) and all(_within_google_front_ends(source) for source in sources)


def _service_port_allowed(service_port: int, props: Mapping[str, Any]) -> bool:
    """The API group's exceptions (apiReplicas > 1): the API's port from Google's health checkers
    and load balancer proxies, and any service's port from the stack's own VMs by tag."""
    if _from_stack_vms_only(props):
        return True
    return service_port == SERVICES.api.port and _from_google_front_ends_only(props)


def no_service_port(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != FIREWALL:
        return
    services = SERVICES.all()
    opened = set(firewall_opened_ports(args.props, tuple(service.port for service in services)))
    for service in services:
        if service.port in opened and not _service_port_allowed(service.port, args.props):
            reach = (
                "through the edge proxy (443)"
                if service.exposure is not Exposure.INTERNAL
                else "over an SSH tunnel"
            )
            report_violation(
                f"Port {service.port} of service {service.name!r} is opened; it is reached {reach} only.",
                None,
            )


# --- CIS GCP 4.x: the VM -------------------------------------------------------------------------


def _instance_props(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    return args.props if args.resource_type in INSTANCE_TYPES else None


def no_default_service_account(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    if props is None:
        return
    email = str((props.get("serviceAccount") or {}).get("email") or "")
    if email == "default" or _DEFAULT_COMPUTE_ACCOUNT.match(email):
        report_violation("VM runs as the Compute Engine default service account (CIS GCP 4.1).", None)


def _tags(props: Mapping[str, Any]) -> set[str]:
    return {str(tag) for tag in props.get("tags") or []}


def no_full_api_scope(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    # The one exception: the API replicas read their MLflow password from Secret Manager, which
    # accepts no narrower scope; their own account's IAM grants are their limit
    # (stacks/replica_identity.py). 4.1 still forbids the default account with it.
    if props is None or REPLICA_TAG in _tags(props):
        return
    scopes = (props.get("serviceAccount") or {}).get("scopes") or []
    if FULL_API_SCOPES.intersection(str(scope) for scope in scopes):
        report_violation("VM has the full cloud-platform API scope; grant narrow scopes (CIS GCP 4.2).", None)


def project_ssh_keys_blocked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    if props is not None and not _truthy((props.get("metadata") or {}).get("block-project-ssh-keys")):
        report_violation("Set metadata block-project-ssh-keys=true (CIS GCP 4.3).", None)


def serial_port_disabled(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    if props is None:
        return
    metadata = props.get("metadata") or {}
    # Explicitly false: otherwise project-wide metadata could switch the serial console on.
    if "serial-port-enable" not in metadata or _truthy(metadata["serial-port-enable"]):
        report_violation("Set metadata serial-port-enable=false (CIS GCP 4.5).", None)


def no_ip_forwarding(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    if props is not None and props.get("canIpForward") is True:
        report_violation("canIpForward must be false (CIS GCP 4.6).", None)


def no_public_ip(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    if props is None:
        return
    # The stack's own VM is the exception: it serves the edge (80/443) and SSH on its address. An
    # instance template never is: its instances (the API replicas) are reached through the load
    # balancer, and leave through Cloud NAT.
    if args.resource_type == INSTANCE and VM_TAG in _tags(props):
        return
    for interface in props.get("networkInterfaces") or []:
        if interface.get("accessConfigs") or interface.get("ipv6AccessConfigs"):
            report_violation(
                "VM or instance template with an external IP (access config); only the stack's "
                f"edge VM (tag {VM_TAG}) has one (CIS GCP 4.9).",
                None,
            )


def shielded_vm(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = _instance_props(args)
    if props is None:
        return
    shielded = props.get("shieldedInstanceConfig") or {}
    # Secure boot defaults to off in GCE; vTPM and integrity monitoring default to on.
    if shielded.get("enableSecureBoot") is not True:
        report_violation("Shielded VM: enableSecureBoot must be true (CIS GCP 4.8).", None)
    for flag in ("enableVtpm", "enableIntegrityMonitoring"):
        if shielded.get(flag) is False:
            report_violation(f"Shielded VM: {flag} must not be false (CIS GCP 4.8).", None)


# --- Project rule: only Google's health checkers and proxies reach the API replicas from outside --


def health_checks_from_google_only(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rules that admit address ranges to the replicas (health checks, the load balancer) list
    Google's front-end ranges only; the stack's own VMs reach them by tag."""
    props = args.props
    if args.resource_type != FIREWALL or REPLICA_TAG not in {
        str(tag) for tag in props.get("targetTags") or []
    }:
        return
    if not list(_ingress_allows(props)):
        return
    strangers = [source for source in _source_ranges(props) if not _within_google_front_ends(source)]
    if strangers:
        report_violation(
            f"Firewall rule to the API replicas admits {', '.join(strangers)}: only Google's health "
            f"check and proxy ranges ({', '.join(GOOGLE_FRONT_END_RANGES)}) may reach them.",
            None,
        )


# --- CIS GCP 5.x: Cloud Storage buckets ----------------------------------------------------------


def _public_members(args: ResourceValidationArgs) -> list[str]:
    props = args.props
    if args.resource_type in BUCKET_IAM_MEMBERS:
        members = [str(props.get("member") or "")]
    elif args.resource_type in BUCKET_IAM_BINDINGS:
        members = [str(member) for member in props.get("members") or []]
    elif args.resource_type == BUCKET_IAM_POLICY:
        # The policy is JSON text: a public member appears verbatim in it.
        text = str(props.get("policyData") or "")
        members = [member for member in PUBLIC_MEMBERS if f'"{member}"' in text]
    else:
        return []
    return [member for member in members if member in PUBLIC_MEMBERS]


def bucket_not_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == BUCKET and args.props.get("publicAccessPrevention") != "enforced":
        report_violation("Bucket: set publicAccessPrevention='enforced' (CIS GCP 5.1).", None)
    for member in _public_members(args):
        report_violation(
            f"Bucket IAM grants a role to {member}: buckets are never public (CIS GCP 5.1).", None
        )


def bucket_uniform_access(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == BUCKET and args.props.get("uniformBucketLevelAccess") is not True:
        report_violation("Bucket: set uniformBucketLevelAccess=true, IAM only, no ACLs (CIS GCP 5.2).", None)


# --- Project rule: disks and their snapshots say how long snapshots are kept ----------------------


def _retention_days(labels: Any) -> int | None:
    text = str((labels or {}).get(SNAPSHOT_RETENTION_LABEL) or "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def snapshot_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = args.props
    if args.resource_type == DISK and _retention_days(props.get("labels")) is None:
        report_violation(f"Disk: label {SNAPSHOT_RETENTION_LABEL} must give its snapshots' days (> 0).", None)
    if args.resource_type != RESOURCE_POLICY or not props.get("snapshotSchedulePolicy"):
        return
    schedule = props["snapshotSchedulePolicy"]
    raw_days = (schedule.get("retentionPolicy") or {}).get("maxRetentionDays")
    # Numbers reach policies as floats (protobuf Struct values).
    if isinstance(raw_days, bool) or not isinstance(raw_days, (int, float)) or raw_days < 1:
        report_violation("Snapshot schedule: retentionPolicy.maxRetentionDays must be set (>= 1).", None)
        return
    days = int(raw_days)
    labelled = _retention_days((schedule.get("snapshotProperties") or {}).get("labels"))
    if labelled != days:
        report_violation(
            f"Snapshot schedule: label {SNAPSHOT_RETENTION_LABEL} of its snapshots must be {days} "
            "(its maxRetentionDays).",
            None,
        )


@dataclass(frozen=True)
class Rule:
    cis_item: str  # CIS Google Cloud Platform Foundation Benchmark item, "-" for project rules
    description: str
    validate: Validate


# name -> rule: the table the README and the tests refer to.
RULES: dict[str, Rule] = {
    "cis-3.1-no-default-network": Rule(
        "3.1", "No default network: custom-mode VPCs only, nothing attached to 'default'.", no_default_network
    ),
    "cis-3.6-no-ssh-from-internet": Rule(
        "3.6", "No firewall rule opens SSH (22) to 0.0.0.0/0 or ::/0.", no_ssh_from_internet
    ),
    "cis-3.7-no-rdp": Rule("3.7", "No firewall rule opens RDP (3389).", no_rdp),
    "cis-4.1-no-default-service-account": Rule(
        "4.1", "VMs do not run as the Compute Engine default service account.", no_default_service_account
    ),
    "cis-4.2-no-full-api-scope": Rule(
        "4.2", "VMs do not get the full cloud-platform API scope.", no_full_api_scope
    ),
    "cis-4.3-block-project-ssh-keys": Rule(
        "4.3", "VMs block project-wide SSH keys.", project_ssh_keys_blocked
    ),
    "cis-4.5-serial-port-disabled": Rule(
        "4.5", "VMs explicitly disable the interactive serial port.", serial_port_disabled
    ),
    "cis-4.6-no-ip-forwarding": Rule("4.6", "VMs do not forward IP packets.", no_ip_forwarding),
    "cis-4.9-no-public-ip": Rule(
        "4.9",
        f"VMs and instance templates have no external IP, except the stack's edge VM (tag {VM_TAG}).",
        no_public_ip,
    ),
    "cis-4.8-shielded-vm": Rule(
        "4.8", "VMs are Shielded VMs (secure boot, vTPM, integrity monitoring).", shielded_vm
    ),
    "cis-5.1-bucket-not-public": Rule(
        "5.1",
        "Buckets enforce public access prevention and grant nothing to allUsers or allAuthenticatedUsers.",
        bucket_not_public,
    ),
    "cis-5.2-bucket-uniform-access": Rule(
        "5.2", "Buckets use uniform bucket-level access (IAM only, no object ACLs).", bucket_uniform_access
    ),
    "snapshot-retention": Rule(
        "-",
        f"Disks carry label {SNAPSHOT_RETENTION_LABEL} (days their snapshots are kept); snapshot "
        "schedules set maxRetentionDays and label their snapshots with the same days.",
        snapshot_retention,
    ),
    "no-service-port": Rule(
        "-",
        "No firewall rule opens a service's own port (config/services.py) to anyone: the public "
        "reach services through the edge proxy, admins over SSH tunnels. With an API group, the "
        "API's port from Google's health check and proxy ranges, and ports opened between the "
        "stack's VMs by network tag, are the exceptions.",
        no_service_port,
    ),
    "health-checks-from-google-only": Rule(
        "-",
        "Firewall rules to the API replicas admit address ranges only from Google's health check and "
        "load balancer proxy ranges (config/api_group.py).",
        health_checks_from_google_only,
    ),
}


def policies() -> list[Policy]:
    """The pack's policies, every one mandatory."""
    return [
        ResourceValidationPolicy(
            name=name,
            description=rule.description,
            validate=rule.validate,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, rule in RULES.items()
    ]
