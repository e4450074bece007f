"""The API replicas' identity: a service account of their own, and the one secret they read.

The replicas (apiReplicas > 1) run as their own account, never the management VM's (whose account
may write backups and list instances) nor the Compute Engine default. It holds exactly:
- log and metric writer on the project, as the management VM's account (the Ops Agent's roles);
- Artifact Registry reader on the images' repository (stacks/registry_access.py);
- Secret Manager accessor on one secret: the MLflow password of the API's user.

The password reaches the replicas through Secret Manager only, never instance metadata (readable
by every process on the VM and shown in the console). The secret's data is the Pulumi secret
derived from MLflow's admin password (stacks/provision_env.py), so a rotation of the admin's makes a
new version, whose name the startup script reads: the template changes and the group rolls.

Scope: Secret Manager accepts only the `cloud-platform` OAuth scope ("Accessing the API",
cloud.google.com/secret-manager/docs/accessing-the-api: "the underlying instance or node must have
the cloud-platform OAuth scope"), so the replicas get it and IAM is what limits them: the grants
above are the whole of what their token can do. The policy pack's scope rule knows this exception
by the replicas' network tag (policy/cis_gcp.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from stacks.apis import child_options
from stacks.compute import SERVICE_ACCOUNT_ROLES

SECRET_ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"  # noqa: S105 - a role name
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# cloud-platform covers Logging, Monitoring and Artifact Registry too; IAM narrows it (see above).
REPLICA_SCOPES = (CLOUD_PLATFORM_SCOPE,)


@dataclass(frozen=True)
class ReplicaIdentityArgs:
    project: str
    # GCP ids spelled out per stack (stacks/naming.py).
    service_account_id: str
    secret_id: str
    # The API user's MLflow password: a Pulumi secret, never logged or put in metadata.
    mlflow_api_password: pulumi.Input[str]
    labels: dict[str, str] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()


class ReplicaIdentity(pulumi.ComponentResource):
    service_account: gcp.serviceaccount.Account
    role_bindings: list[gcp.projects.IAMMember]
    secret: gcp.secretmanager.Secret
    secret_version: gcp.secretmanager.SecretVersion
    secret_access: gcp.secretmanager.SecretIamMember

    def __init__(
        self, name: str, args: ReplicaIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:ReplicaIdentity", name, None, opts)
        child = child_options(self, args.after)
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=args.project,
            account_id=args.service_account_id,
            display_name="MLOps API replicas (logs, metrics, image pulls, MLflow password)",
            opts=child,
        )
        member = self.member
        self.role_bindings = [
            gcp.projects.IAMMember(
                f"{name}-{role.split('/')[-1].lower()}",
                project=args.project,
                role=role,
                member=member,
                opts=child,
            )
            for role in SERVICE_ACCOUNT_ROLES
        ]
        self.secret = gcp.secretmanager.Secret(
            f"{name}-mlflow-password",
            project=args.project,
            secret_id=args.secret_id,
            # Google picks the replica locations; the data is one password.
            replication=gcp.secretmanager.SecretReplicationArgs(
                auto=gcp.secretmanager.SecretReplicationAutoArgs()
            ),
            labels=args.labels,
            opts=child,
        )
        self.secret_version = gcp.secretmanager.SecretVersion(
            f"{name}-mlflow-password-version",
            secret=self.secret.id,
            secret_data=pulumi.Output.secret(args.mlflow_api_password),
            # A new password is a new version (secret_data forces a replacement); the old one is
            # destroyed after the new exists, so a replica starting meanwhile reads either.
            opts=child_options(self, [*args.after, self.secret]),
        )
        self.secret_access = gcp.secretmanager.SecretIamMember(
            f"{name}-mlflow-password-reader",
            project=args.project,
            secret_id=self.secret.secret_id,
            role=SECRET_ACCESSOR_ROLE,
            member=member,
            opts=child,
        )
        self.register_outputs(
            {"email": self.service_account.email, "secret_version": self.secret_version.name}
        )

    @property
    def member(self) -> pulumi.Output[str]:
        return pulumi.Output.concat("serviceAccount:", self.service_account.email)

    @property
    def grants(self) -> list[pulumi.Resource]:
        """What a replica's first start needs to exist: its roles and its access to the secret."""
        return [*self.role_bindings, self.secret_version, self.secret_access]
