"""Typed settings of one Pulumi stack (one environment), validated before any resource exists.

The values come from `Pulumi.<stack>.yaml`, which the Pulumi engine hands to the program as a flat
map of `namespace:key` -> string (structured values arrive as JSON text). `parse_stack_config`
takes exactly that map, so it is tested without Pulumi. Every problem is reported at once, each
line naming the full key (`mlops-platform:machineType`), with the nearest known key for a typo.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config import edge
from config.alert_receivers import SECRET_RECEIVER_KEYS, AlertReceiverSettings
from config.api_scaling import ApiScalingSettings
from config.services import SERVICES, Exposure
from config.ssh_access import IAP_TCP_FORWARDING_RANGE, SSH_VIA_DIRECT, SSH_VIA_IAP, SSH_VIA_MODES

# Pulumi namespaces the project's own config keys with it; Pulumi.yaml is generated from it.
PROJECT_NAME = "mlops-platform"
# Keys of the Google provider that the program reads too (`pulumi config set gcp:project ...`).
GCP_NAMESPACE = "gcp"
GCP_KEYS = ("project", "region", "zone")

DEFAULT_BOOT_IMAGE = "debian-cloud/debian-13"

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_GCP_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LINUX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SSH_PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$")
# GCP allows 64 labels per resource; the program adds its own three (managed-by, stack, and the
# retention label of disks and snapshots).
_MAX_USER_LABELS = 61
# Zonal persistent disk types a data disk may use (Hyperdisk needs machine series this stack's
# default e2 types do not support).
DATA_DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard")
# Ten years: longer retention is a mistake in days, not a policy.
MAX_RETENTION_DAYS = 3650
# Label every data disk and its snapshots carry: how many days a snapshot is kept (the program
# sets it, the policy pack checks it, and whoever browses snapshots sees when one goes).
SNAPSHOT_RETENTION_LABEL = "snapshot-retention-days"


class StackConfigError(ValueError):
    """The stack configuration is wrong; `problems` holds one line per wrong key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid stack configuration:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


def _is_whole_internet(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return network.prefixlen == 0


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a CIDR range such as 203.0.113.7/32 ({error})") from None
    return str(network)


Cidr = Annotated[str, Field(min_length=1)]


class StackSettings(ApiScalingSettings, AlertReceiverSettings):
    """One environment's settings. Aliases are the config keys as written in Pulumi.<stack>.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)

    project: str = Field(alias="gcp:project", description="GCP project id that holds every resource.")
    region: str = Field(default="europe-west1", alias="gcp:region", description="GCP region.")
    zone: str = Field(default="europe-west1-b", alias="gcp:zone", description="GCP zone of the VM.")
    machine_type: str = Field(
        default="e2-small",
        alias="machineType",
        min_length=1,
        description="Compute Engine machine type of the VM.",
    )
    boot_image: str = Field(
        default=DEFAULT_BOOT_IMAGE,
        alias="bootImage",
        min_length=1,
        description="Boot disk image or image family (project/family).",
    )
    boot_disk_size_gb: int = Field(
        default=20, alias="bootDiskSizeGb", ge=10, le=2000, description="Boot disk size in GB (10-2000)."
    )
    deploy_user: str = Field(
        default="deploy",
        alias="deployUser",
        description="Linux user that provisioning logs in as (gets the generated ED25519 key).",
    )
    ssh_via: str = Field(
        default=SSH_VIA_DIRECT,
        alias="sshVia",
        description=f"How SSH reaches the VM: {SSH_VIA_DIRECT} (its address, from sshSourceRanges) or "
        f"{SSH_VIA_IAP} (Identity-Aware Proxy TCP forwarding: SSH only from {IAP_TCP_FORWARDING_RANGE}, "
        "provisioning and admins connect through `gcloud compute start-iap-tunnel`).",
    )
    # Optional in the schema, required by `direct` (checked below, on the default too): with `iap`
    # no admin range is opened at all, and a range set anyway would look like it opened SSH.
    ssh_source_ranges: list[Cidr] = Field(
        default_factory=list,
        validate_default=True,
        alias="sshSourceRanges",
        description=f"Admin CIDR ranges allowed to reach SSH (port 22). Required with sshVia "
        f"{SSH_VIA_DIRECT}, refused with {SSH_VIA_IAP}; 0.0.0.0/0 is refused.",
    )
    public_source_ranges: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        alias="publicSourceRanges",
        min_length=1,
        description="CIDR ranges allowed to reach the public services.",
    )
    public_services: list[str] = Field(
        default_factory=lambda: [SERVICES.api.name],
        alias="publicServices",
        description="Services opened to publicSourceRanges; only non-internal services may be listed.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels put on every resource that takes labels."
    )
    spot: bool = Field(
        default=False, description="Run the VM as a Spot VM (cheaper; GCP may stop it at any time)."
    )
    deletion_protection: bool = Field(
        default=False,
        alias="deletionProtection",
        description="Refuse to delete the VM until this is turned off; `pulumi destroy` is then refused "
        "too (the VM, data disk, backup bucket, passwords and deploy key are protected in Pulumi).",
    )
    data_disk_size_gb: int = Field(
        default=20,
        alias="dataDiskSizeGb",
        ge=10,
        le=65536,
        description="Size in GB of the data disk (Docker's data root: MLflow's runs, models and "
        "artifacts); it can grow, never shrink.",
    )
    data_disk_type: str = Field(
        default="pd-balanced",
        alias="dataDiskType",
        description=f"Persistent disk type of the data disk ({', '.join(DATA_DISK_TYPES)}).",
    )
    snapshot_retention_days: int = Field(
        default=7,
        alias="snapshotRetentionDays",
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days each daily snapshot of the data disk is kept.",
    )
    retain_data_disk: bool = Field(
        default=True,
        alias="retainDataDisk",
        description="Keep the data disk and the backup bucket in GCP when the stack deletes them "
        "(`pulumi destroy`); false deletes them with the stack.",
    )
    backup_retention_days: int = Field(
        default=30,
        alias="backupRetentionDays",
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days a backup object is kept in the backup bucket before it is deleted.",
    )
    ssh_public_key: str | None = Field(
        default=None,
        alias="sshPublicKey",
        description="Extra admin public key for the deploy user, next to the generated ED25519 key.",
    )
    domain: str | None = Field(
        default=None,
        description="A domain whose DNS A record points at the VM's address: the edge gets a "
        "certificate for it over ACME HTTP-01 and renews it. Unset: a self-signed certificate.",
    )
    acme_email: str | None = Field(
        default=None, alias="acmeEmail", description="E-mail for the ACME account (expiry notices)."
    )
    acme_server: str = Field(
        default=edge.LETS_ENCRYPT_DIRECTORY,
        alias="acmeServer",
        description="ACME directory URL (Let's Encrypt's staging directory for trials).",
    )

    @field_validator("domain", "acme_email", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Pulumi.yaml declares optional keys with default "" (a declared key without default is required).
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError(f"{value!r} is not a lowercase DNS name such as api.example.com")
        return value

    @field_validator("acme_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("data_disk_type")
    @classmethod
    def _check_data_disk_type(cls, value: str) -> str:
        return _one_of(value, DATA_DISK_TYPES, "a data disk type")

    @field_validator("ssh_via")
    @classmethod
    def _check_ssh_via(cls, value: str) -> str:
        return _one_of(value, SSH_VIA_MODES, "a way to reach SSH")

    @field_validator("acme_server")
    @classmethod
    def _check_acme_server(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"{value!r} is not an https:// ACME directory URL")
        return value

    @field_validator("ssh_source_ranges", "public_source_ranges", "public_services", "labels", mode="before")
    @classmethod
    def _decode_json(cls, value: Any) -> Any:
        # The engine hands structured config values over as JSON text.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"must be a JSON list or object, got {value!r}") from None
        return value

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        if not _GCP_PROJECT_ID.match(value):
            raise ValueError(f"{value!r} is not a GCP project id (6-30 of a-z, 0-9, -; starts with a letter)")
        return value

    @field_validator("deploy_user")
    @classmethod
    def _check_deploy_user(cls, value: str) -> str:
        if not _LINUX_USER.match(value) or value == "root":
            raise ValueError(f"{value!r} is not a usable login name (lowercase, not root, at most 32 chars)")
        return value

    @field_validator("ssh_source_ranges")
    @classmethod
    def _check_ssh_ranges(cls, ranges: list[str], info: ValidationInfo) -> list[str]:
        checked = [_cidr(value) for value in ranges]
        for value in checked:
            if _is_whole_internet(ipaddress.ip_network(value)):
                raise ValueError(
                    f"{value} opens SSH to the whole internet (CIS GCP 3.6); list your admin ranges"
                )
        # sshVia is declared (so validated) first; absent here when it was wrong itself.
        ssh_via = info.data.get("ssh_via")
        key = _full_key("sshSourceRanges", PROJECT_NAME)
        if ssh_via == SSH_VIA_DIRECT and not checked:
            raise ValueError(
                f"required with sshVia {SSH_VIA_DIRECT} (your admin ranges, e.g. 203.0.113.7/32), or set "
                f"sshVia {SSH_VIA_IAP}; `pulumi config set --path '{key}[0]' ...`"
            )
        if ssh_via == SSH_VIA_IAP and checked:
            raise ValueError(
                f"has no effect with sshVia {SSH_VIA_IAP} (SSH is admitted only from IAP's "
                f"{IAP_TCP_FORWARDING_RANGE}); remove it: `pulumi config rm {key}`"
            )
        return checked

    @field_validator("public_source_ranges")
    @classmethod
    def _check_public_ranges(cls, ranges: list[str]) -> list[str]:
        return [_cidr(value) for value in ranges]

    @field_validator("public_services")
    @classmethod
    def _check_public_services(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in SERVICES.names():
                hint = _did_you_mean(name, SERVICES.names())
                raise ValueError(f"unknown service {name!r}{hint}; services: {', '.join(SERVICES.names())}")
            if SERVICES.by_name(name).exposure is Exposure.INTERNAL:
                raise ValueError(f"{name!r} is internal: reach it through the SSH tunnel, never the firewall")
        return list(dict.fromkeys(names))

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > _MAX_USER_LABELS:
            raise ValueError(f"at most {_MAX_USER_LABELS} labels")
        for key, value in labels.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r}: 1-63 of a-z 0-9 _ -, starting with a lowercase letter")
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"label value {value!r} of {key!r}: at most 63 of a-z 0-9 _ -")
        return labels

    @field_validator("ssh_public_key")
    @classmethod
    def _check_public_key(cls, value: str | None) -> str | None:
        # Pulumi.yaml declares the key with default "" (a declared key without default is required).
        if value is None or not value.strip():
            return None
        if not _SSH_PUBLIC_KEY.match(value.strip()):
            raise ValueError("not an OpenSSH public key line ('ssh-ed25519 AAAA... comment')")
        return value.strip()

    @model_validator(mode="after")
    def _zone_in_region(self) -> StackSettings:
        if not self.zone.startswith(f"{self.region}-"):
            raise ValueError(f"gcp:zone {self.zone!r} is not in gcp:region {self.region!r}")
        return self

    @property
    def ssh_through_iap(self) -> bool:
        return self.ssh_via == SSH_VIA_IAP

    def service_is_public(self, name: str) -> bool:
        return name in self.public_services


def _one_of(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        hint = _did_you_mean(value, choices)
        raise ValueError(f"{value!r} is not {what}{hint}; one of: {', '.join(choices)}")
    return value


def _did_you_mean(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _full_key(alias: str, project_name: str) -> str:
    return alias if ":" in alias else f"{project_name}:{alias}"


def config_keys(project_name: str = PROJECT_NAME) -> dict[str, str]:
    """Every config key the program reads (full name) -> its description."""
    return {
        _full_key(field.alias or name, project_name): field.description or ""
        for name, field in StackSettings.model_fields.items()
    }


def parse_stack_config(
    raw: Mapping[str, Any], project_name: str = PROJECT_NAME, secret_keys: Collection[str] | None = None
) -> StackSettings:
    """Validate the engine's `namespace:key -> value` map; raise StackConfigError naming every bad key.

    `secret_keys` (full names) are the keys the engine holds encrypted; None skips that check (tests
    of other keys). A key that must be secret but was set in plain text is refused: it would sit
    readable in Pulumi.<stack>.yaml and in the state."""
    aliases = [field.alias or name for name, field in StackSettings.model_fields.items()]
    known_in_project = [alias for alias in aliases if ":" not in alias]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace == project_name:
            if key in known_in_project:
                values[key] = value
            else:
                hint = _did_you_mean(key, known_in_project)
                problems.append(f"{full_key}: unknown key{hint}")
        elif namespace == GCP_NAMESPACE and key in GCP_KEYS:
            values[full_key] = value
        # Other namespaces (gcp:credentials, other providers) belong to their providers.

    if secret_keys is not None:
        problems.extend(_plain_text_secrets(raw, project_name, secret_keys))
    try:
        settings = StackSettings.model_validate(values)
    except ValidationError as error:
        problems.extend(_describe(error, project_name))
        raise StackConfigError(problems) from None
    if problems:
        raise StackConfigError(problems)
    return settings


def _plain_text_secrets(raw: Mapping[str, Any], project_name: str, secret_keys: Collection[str]) -> list[str]:
    keys = [_full_key(key, project_name) for key in SECRET_RECEIVER_KEYS]
    return [
        f"{key}: must be a secret; set it with `pulumi config set --secret {key} ...`"
        for key in keys
        if str(raw.get(key) or "").strip() and key not in secret_keys
    ]


def _alias_of(name: str) -> str:
    """The config key of a field: errors on a default (validate_default) carry its Python name."""
    field = StackSettings.model_fields.get(name)
    return (field.alias or name) if field is not None else name


def _describe(error: ValidationError, project_name: str) -> list[str]:
    lines: list[str] = []
    for detail in error.errors():
        location = detail["loc"]
        if not location:
            # A model-level check (zone vs region) names its keys in its own message.
            lines.append(detail["msg"].removeprefix("Value error, "))
            continue
        key = _full_key(_alias_of(str(location[0])), project_name)
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "missing":
            description = config_keys(project_name).get(key, "")
            lines.append(f"{key}: required but not set ({description}); `pulumi config set {key} ...`")
        else:
            suffix = "".join(f"[{part}]" for part in location[1:])
            # Never echo a secret's value (a webhook URL carries its token).
            echo = detail["type"] not in {"value_error"} and key.partition(":")[2] not in SECRET_RECEIVER_KEYS
            got = f" (got {detail['input']!r})" if echo else ""
            lines.append(f"{key}{suffix}: {message}{got}")
    return lines
