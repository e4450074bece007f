"""The project's Google APIs this program's resources need, switched on before any of them.

A fresh project has most of them off, and the first resource would fail with SERVICE_DISABLED.
Enabling goes through the Service Usage API (serviceusage.googleapis.com), which must already be
on: it is the one API a program cannot switch on for itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

REQUIRED_APIS = (
    # Network, firewall, address, VM, disks, snapshot schedules, guest attributes (host key).
    "compute.googleapis.com",
    # The VM's service account.
    "iam.googleapis.com",
    # Project-level IAM bindings (the service account's log and metric writer roles).
    "cloudresourcemanager.googleapis.com",
    # The backup bucket and its IAM binding.
    "storage.googleapis.com",
    # Where the VM's Ops Agent writes: its service account's only two roles are for these.
    "logging.googleapis.com",
    "monitoring.googleapis.com",
)
# Identity-Aware Proxy, switched on only for stacks that reach SSH through it (`sshVia: iap`): its
# setup guide for TCP forwarding enables it, and a `direct` stack's plan then gains no resource.
# Enabling it costs nothing, and destroying the stack leaves it on (as every API here).
IAP_API = "iap.googleapis.com"
# Secret Manager, only for stacks whose API scales out (apiReplicas > 1): the replicas read the
# MLflow password of the API's user from it (stacks/replica_identity.py).
SECRET_MANAGER_API = "secretmanager.googleapis.com"  # noqa: S105 - an API name, not a secret


class ProjectApis(pulumi.ComponentResource):
    services: list[gcp.projects.Service]

    def __init__(
        self,
        name: str,
        project: str,
        extra_apis: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:gcp:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=project,
                service=api,
                # Destroying the stack must not switch off an API that other workloads of the
                # project (or another stack) still use.
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in (*REQUIRED_APIS, *extra_apis)
        ]
        self.register_outputs({"services": [service.service for service in self.services]})


def child_options(
    parent: pulumi.Resource, after: Sequence[pulumi.Resource], **options: object
) -> pulumi.ResourceOptions:
    """Options of a component's child: under its parent and after `after` (the APIs).

    A component's own depends_on does not reach the resources declared inside it, so every GCP
    resource names the APIs itself.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=list(after), **options)  # type: ignore[arg-type]
