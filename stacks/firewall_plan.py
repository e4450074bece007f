"""Which ingress rules the VM gets, derived from the service catalog and the stack settings.

Pure data, so tests and the policy pack reason about the same ports the container stack uses.
Internal services (MLflow, Prometheus) get no rule at all: they are reached over SSH tunnels.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.services import SERVICES, Exposure
from config.stack_settings import StackSettings

SSH_PORT = 22


@dataclass(frozen=True)
class FirewallRuleSpec:
    """One ingress allow rule for TCP."""

    name: str
    ports: tuple[int, ...]
    source_ranges: tuple[str, ...]
    description: str


def planned_firewall_rules(settings: StackSettings) -> tuple[FirewallRuleSpec, ...]:
    rules = [
        FirewallRuleSpec(
            name="allow-ssh",
            ports=(SSH_PORT,),
            source_ranges=tuple(settings.ssh_source_ranges),
            description="SSH for admins and provisioning, only from the configured admin ranges.",
        )
    ]
    for service in SERVICES.all():
        if service.exposure is Exposure.INTERNAL or not settings.service_is_public(service.name):
            continue
        rules.append(
            FirewallRuleSpec(
                name=f"allow-{service.name}",
                ports=(service.port,),
                source_ranges=tuple(settings.public_source_ranges),
                description=f"{service.description}: public from the configured source ranges.",
            )
        )
    return tuple(rules)
