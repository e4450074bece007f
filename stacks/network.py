"""The network concern: a custom VPC and subnet (never the default network) and the VM's firewall."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from stacks.apis import child_options
from stacks.firewall_plan import FirewallRuleSpec

SUBNET_CIDR = "10.10.0.0/24"


@dataclass(frozen=True)
class NetworkArgs:
    project: str
    region: str
    # The VM's network tag; each rule names the tags it applies to (stacks/firewall_plan.py).
    vm_tag: str
    rules: tuple[FirewallRuleSpec, ...]
    # The project's APIs: every resource here waits for them.
    after: Sequence[pulumi.Resource] = ()


class Network(pulumi.ComponentResource):
    vpc: gcp.compute.Network
    subnet: gcp.compute.Subnetwork
    firewall_rules: list[gcp.compute.Firewall]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Network", name, None, opts)
        child = child_options(self, args.after)

        # Custom mode: no auto-created subnet in every region, and no default allow rules (CIS 3.1).
        self.vpc = gcp.compute.Network(
            f"{name}-vpc",
            project=args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description="MLOps platform VPC (custom mode).",
            opts=child,
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            project=args.project,
            region=args.region,
            network=self.vpc.id,
            ip_cidr_range=SUBNET_CIDR,
            # Lets the VM reach Google APIs (logging, monitoring) without extra egress paths.
            private_ip_google_access=True,
            opts=child,
        )
        self.firewall_rules = [
            gcp.compute.Firewall(
                f"{name}-{rule.name}",
                project=args.project,
                network=self.vpc.self_link,
                direction="INGRESS",
                allows=[
                    gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(port) for port in rule.ports])
                ],
                # A rule from other VMs of the stack names them by tag, with no address range.
                source_ranges=list(rule.source_ranges) or None,
                source_tags=list(rule.source_tags) or None,
                target_tags=list(rule.target_tags),
                description=rule.description,
                opts=child,
            )
            for rule in args.rules
        ]
        self.register_outputs(
            {
                "network": self.vpc.self_link,
                "subnetwork": self.subnet.self_link,
                "firewall_rules": [rule.name for rule in self.firewall_rules],
            }
        )
