"""Which ingress rules the VM gets, derived from config/ and the stack settings.

Pure data, so tests and the policy pack reason about the same ports the container stack uses.
Two rules: SSH from the admin ranges (or, with `sshVia: iap`, from Identity-Aware Proxy's TCP
forwarding range only), and the edge proxy's HTTP and HTTPS ports from the public ranges. No
service's own port is ever opened: the public services are served through the edge, the internal
ones (MLflow, Prometheus) are reached over SSH tunnels.

With an API group (apiReplicas > 1), three more, each as narrow as its purpose: the replicas' API
port from Google's health checkers and load balancer proxies only; MLflow's port on the management
VM from the replicas only; the replicas' API port (its /metrics) from the management VM only, where
Prometheus scrapes it. The last two name their sources by network tag, never by address range.

When publicSourceRanges leaves out part of the internet, one more: HTTPS from Google's uptime
checkers only (stacks/uptime.py), so the outside watch still reaches the edge.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from config import edge
from config.api_group import GOOGLE_FRONT_END_RANGES, VM_TAG
from config.replica_discovery import REPLICA_TAG
from config.services import SERVICES
from config.ssh_access import IAP_TCP_FORWARDING_RANGE
from config.stack_settings import StackSettings

SSH_PORT = 22


@dataclass(frozen=True)
class FirewallRuleSpec:
    """One ingress allow rule for TCP: from address ranges or from VMs carrying `source_tags`, to
    the VMs carrying `target_tags`."""

    name: str
    ports: tuple[int, ...]
    source_ranges: tuple[str, ...]
    description: str
    source_tags: tuple[str, ...] = ()
    target_tags: tuple[str, ...] = (VM_TAG,)


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


def planned_firewall_rules(
    settings: StackSettings, uptime_checker_ips: Sequence[str] = ()
) -> tuple[FirewallRuleSpec, ...]:
    """`uptime_checker_ips`: Google's uptime checker addresses (gcp.monitoring.get_uptime_check_i_ps),
    which the program looks up only when `needs_uptime_checker_rule` says the rule is needed."""
    rules = [ssh_rule(settings)]
    rules.append(
        FirewallRuleSpec(
            name="allow-edge",
            ports=(edge.PUBLIC_HTTP_PORT, edge.PUBLIC_HTTPS_PORT),
            source_ranges=tuple(settings.public_source_ranges),
            description="The edge proxy (HTTPS, and HTTP for redirects and ACME) from the public ranges.",
        )
    )
    if settings.scales_out:
        rules += api_group_rules()
    checkers = uptime_checker_rule(uptime_checker_ips) if needs_uptime_checker_rule(settings) else None
    if checkers is not None:
        rules.append(checkers)
    return tuple(rules)


def needs_uptime_checker_rule(settings: StackSettings) -> bool:
    """An uptime check probes the edge's 443 on the VM (scaled out, the load balancer's too, which
    the VPC firewall does not filter); publicSourceRanges without 0.0.0.0/0 would shut the
    checkers out, so they get their own rule."""
    return not any(ipaddress.ip_network(r).prefixlen == 0 for r in settings.public_source_ranges)


def uptime_checker_rule(checker_ips: Sequence[str]) -> FirewallRuleSpec | None:
    """HTTPS on the edge from Google's uptime checkers, as the list Google publishes now (each
    `pulumi up` reads it again). IPv4 only: the VM's address is IPv4, and a GCP rule cannot mix
    IPv4 and IPv6 sources. None without any address: a rule with no source at all would admit
    0.0.0.0/0 (GCP's default for an ingress rule without sources)."""
    addresses = {ipaddress.ip_address(ip) for ip in checker_ips}
    sources = [f"{ip}/32" for ip in sorted(a for a in addresses if a.version == 4)]
    if not sources:
        return None
    return FirewallRuleSpec(
        name="allow-uptime-checkers",
        ports=(edge.PUBLIC_HTTPS_PORT,),
        source_ranges=tuple(sources),
        description="Cloud Monitoring's uptime checkers to the edge's HTTPS (the outside watch).",
    )


def api_group_rules() -> list[FirewallRuleSpec]:
    """The API group's rules (apiReplicas > 1); nothing else opens a service's own port."""
    api, mlflow = SERVICES.api.port, SERVICES.mlflow.port
    return [
        FirewallRuleSpec(
            name="allow-lb-to-replicas",
            ports=(api,),
            source_ranges=GOOGLE_FRONT_END_RANGES,
            target_tags=(REPLICA_TAG,),
            description="Health checks and load balancer proxies to the API replicas, only from Google.",
        ),
        FirewallRuleSpec(
            name="allow-replicas-to-mlflow",
            ports=(mlflow,),
            source_ranges=(),
            source_tags=(REPLICA_TAG,),
            description="The API replicas to MLflow on the management VM; no other source.",
        ),
        FirewallRuleSpec(
            name="allow-prometheus-to-replicas",
            ports=(api,),
            source_ranges=(),
            source_tags=(VM_TAG,),
            target_tags=(REPLICA_TAG,),
            description="Prometheus on the management VM scrapes the API replicas' /metrics.",
        ),
    ]
