"""Names derived from the stack name: Pulumi's logical names, GCP ids and labels.

GCP ids the program spells out itself (the service account, the VM, the data disk) must differ
between stacks of one project. Lowercasing and truncating the stack name alone would map `Dev`
and `dev`, or two long names with a common start, to one id; a short hash of the exact stack name
keeps them apart. Resources Pulumi names itself (network, bucket, ...) get a random suffix anyway.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from config.stack_settings import StackSettings

# Service account ids allow 6-30 of a-z0-9- (the tightest of the ids below): "mlops-" (6) +
# the stack's readable part + "-" + hash + "-vm" (3) fits 30 with 14 readable characters.
ID_PREFIX = "mlops"
STACK_HASH_LENGTH = 6
MAX_READABLE_LENGTH = 14
LOGICAL_READABLE_LENGTH = 18


def _readable(stack: str, length: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-")[:length].rstrip("-") or "stack"


def name_prefix(stack: str) -> str:
    """Prefix of Pulumi's logical names (unique per stack already: the URN holds the stack)."""
    return f"{ID_PREFIX}-{_readable(stack, LOGICAL_READABLE_LENGTH)}"


def stack_hash(stack: str) -> str:
    return hashlib.sha256(stack.encode()).hexdigest()[:STACK_HASH_LENGTH]


@dataclass(frozen=True)
class GcpIds:
    """The ids this stack spells out in GCP, unique per exact stack name."""

    service_account: str
    instance: str
    data_disk: str

    @classmethod
    def of(cls, stack: str) -> GcpIds:
        base = f"{ID_PREFIX}-{_readable(stack, MAX_READABLE_LENGTH)}-{stack_hash(stack)}"
        return cls(service_account=f"{base}-vm", instance=f"{base}-vm", data_disk=f"{base}-data")


@dataclass(frozen=True)
class ReplicaIds:
    """The ids of the API group's identity (apiReplicas > 1), unique per exact stack name."""

    service_account: str
    secret: str

    @classmethod
    def of(cls, stack: str) -> ReplicaIds:
        # "-api" is one longer than the VM's "-vm": one readable character less keeps 30.
        base = f"{ID_PREFIX}-{_readable(stack, MAX_READABLE_LENGTH - 1)}-{stack_hash(stack)}"
        return cls(service_account=f"{base}-api", secret=f"{base}-mlflow-api-password")


def resource_labels(settings: StackSettings, stack: str) -> dict[str, str]:
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", stack.lower())[:63]
    return {**settings.labels, "managed-by": "pulumi", "stack": cleaned}
