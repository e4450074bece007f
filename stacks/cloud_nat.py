"""Egress for the API replicas, which have no external address: Cloud NAT on the stack's subnet.

A replica's startup installs Docker from Debian's archive (deb.debian.org), which only the
internet serves. Google APIs (Artifact Registry's image pulls, Secret Manager, Logging) need no
NAT: the subnet has Private Google Access (stacks/network.py). NAT applies only to interfaces
without an external address, so the management VM (which has one) keeps its own path out.

Nothing here accepts connections: Cloud NAT translates connections the replicas open, never
inbound ones. Created with the group and deleted with it (`pulumi destroy` or apiReplicas back to
1); the router and the NAT config hold no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from stacks.apis import child_options


@dataclass(frozen=True)
class CloudNatArgs:
    project: str
    region: str
    network: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = ()


class CloudNat(pulumi.ComponentResource):
    router: gcp.compute.Router
    nat: gcp.compute.RouterNat

    def __init__(self, name: str, args: CloudNatArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:CloudNat", name, None, opts)
        child = child_options(self, args.after)
        self.router = gcp.compute.Router(
            f"{name}-router", project=args.project, region=args.region, network=args.network, opts=child
        )
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            project=args.project,
            region=args.region,
            router=self.router.name,
            # Google allocates (and releases) the NAT addresses: nobody allow-lists the replicas.
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(
                    name=args.subnetwork, source_ip_ranges_to_nats=["ALL_IP_RANGES"]
                )
            ],
            # Failed translations (port exhaustion) only: cheap, and what an operator needs.
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )
        self.register_outputs({"router": self.router.name})
