"""Which ingress rules the VM gets, derived from config/ and the stack settings.

Pure data, so tests and the policy pack reason about the same ports the container stack uses.
Two rules: SSH from the admin ranges (or, with `sshVia: iap`, from Identity-Aware Proxy's TCP
forwarding range only), and the edge proxy's HTTP and HTTPS ports from the public ranges. No
service's own port is ever opened: the public services are served through the edge, the internal
ones (MLflow, Prometheus) are reached over SSH tunnels.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import edge
from config.ssh_access import IAP_TCP_FORWARDING_RANGE
from config.stack_settings import StackSettings

SSH_PORT = 22


@dataclass(frozen=True)
class FirewallRuleSpec:
    """One ingress allow rule for TCP."""

    name: str
    ports: tuple[int, ...]
    source_ranges: tuple[str, ...]
    description: str


def ssh_rule(settings: StackSettings) -> FirewallRuleSpec:
    """SSH from the admin ranges, or through IAP: then from IAP's range alone, whoever connects."""
    if settings.ssh_through_iap:
        sources: tuple[str, ...] = (IAP_TCP_FORWARDING_RANGE,)
        description = "SSH for admins and provisioning, only through Identity-Aware Proxy TCP forwarding."
    else:
        sources = tuple(settings.ssh_source_ranges)
        description = "SSH for admins and provisioning, only from the configured admin ranges."
    # The rule keeps its name either way, so switching sshVia patches its source ranges and
    # description in place: of a firewall's fields only name and direction force a replacement
    # (`immutable` in the provider's Firewall definition, magic-modules products/compute).
    return FirewallRuleSpec(
        name="allow-ssh", ports=(SSH_PORT,), source_ranges=sources, description=description
    )


def planned_firewall_rules(settings: StackSettings) -> tuple[FirewallRuleSpec, ...]:
    rules = [ssh_rule(settings)]
    rules.append(
        FirewallRuleSpec(
            name="allow-edge",
            ports=(edge.PUBLIC_HTTP_PORT, edge.PUBLIC_HTTPS_PORT),
            source_ranges=tuple(settings.public_source_ranges),
            description="The edge proxy (HTTPS, and HTTP for redirects and ACME) from the public ranges.",
        )
    )
    return tuple(rules)
