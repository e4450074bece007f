"""Which ingress rules the VM gets, derived from config/ and the stack settings.

Pure data, so tests and the policy pack reason about the same ports the container stack uses.
Two rules: SSH from the admin ranges, and the edge proxy's HTTP and HTTPS ports from the public
ranges. No service's own port is ever opened: the public services are served through the edge,
the internal ones (MLflow, Prometheus) are reached over SSH tunnels.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import edge
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
    rules.append(
        FirewallRuleSpec(
            name="allow-edge",
            ports=(edge.PUBLIC_HTTP_PORT, edge.PUBLIC_HTTPS_PORT),
            source_ranges=tuple(settings.public_source_ranges),
            description="The edge proxy (HTTPS, and HTTP for redirects and ACME) from the public ranges.",
        )
    )
    return tuple(rules)
