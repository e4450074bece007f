"""GitHub Actions' way into GCP: a workload identity pool and provider, and one account per job kind.

No key is ever created: a job exchanges its GitHub OIDC token for short-lived credentials of the
one service account its token's subject is bound to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from stacks.bootstrap import roles
from stacks.bootstrap.roles import DEPLOY_ACCOUNT_ID, PREVIEW_ACCOUNT_ID, RELEASE_ACCOUNT_ID
from stacks.bootstrap.settings import BootstrapSettings

GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"
POOL_ID = "github-actions"
PROVIDER_ID = "github"

# Claims kept on the federated identity: the subject binds accounts; repository and environment
# show up in the audit logs of every call the job makes.
ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.environment": "assertion.environment",
}


def repository_condition(repository: str) -> str:
    """CEL the provider evaluates on every token: tokens of any other repository are refused."""
    return f"assertion.repository == '{repository}'"


def subjects(settings: BootstrapSettings) -> dict[str, str]:
    """GitHub's `sub` claim of each job kind (environment jobs carry the environment, not the ref)."""
    repo = f"repo:{settings.github_repository}"
    return {
        PREVIEW_ACCOUNT_ID: f"{repo}:pull_request",
        RELEASE_ACCOUNT_ID: f"{repo}:environment:{settings.release_environment}",
        DEPLOY_ACCOUNT_ID: f"{repo}:environment:{settings.production_environment}",
    }


@dataclass(frozen=True)
class Identities:
    provider: gcp.iam.WorkloadIdentityPoolProvider
    accounts: dict[str, gcp.serviceaccount.Account]


def declare_identities(
    settings: BootstrapSettings, after: Sequence[pulumi.Resource], protect: bool = True
) -> Identities:
    options = pulumi.ResourceOptions(depends_on=list(after))
    pool = gcp.iam.WorkloadIdentityPool(
        "github-pool",
        project=settings.project,
        # The pool id is immutable (a change replaces the pool) and a deleted pool keeps its id for
        # 30 days, so it is protected like the state it guards.
        workload_identity_pool_id=POOL_ID,
        display_name="GitHub Actions",
        description=f"CI/CD of {settings.github_repository}",
        opts=options.merge(pulumi.ResourceOptions(protect=protect)),
    )
    provider = gcp.iam.WorkloadIdentityPoolProvider(
        "github-provider",
        project=settings.project,
        workload_identity_pool_id=pool.workload_identity_pool_id,
        workload_identity_pool_provider_id=PROVIDER_ID,
        display_name="GitHub OIDC",
        attribute_mapping=ATTRIBUTE_MAPPING,
        attribute_condition=repository_condition(settings.github_repository),
        oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_OIDC_ISSUER),
        opts=options,
    )
    accounts = {
        account_id: gcp.serviceaccount.Account(
            account_id,
            project=settings.project,
            account_id=account_id,
            display_name=f"CI/CD {account_id.removeprefix('ci-')} (GitHub Actions)",
            opts=options,
        )
        for account_id in (PREVIEW_ACCOUNT_ID, RELEASE_ACCOUNT_ID, DEPLOY_ACCOUNT_ID)
    }
    for account_id, subject in subjects(settings).items():
        gcp.serviceaccount.IAMMember(
            f"{account_id}-workload-identity",
            service_account_id=accounts[account_id].name,
            role=roles.WORKLOAD_IDENTITY_USER,
            # One exact subject per account: a pull request can never act as the deploy account.
            member=pulumi.Output.concat("principal://iam.googleapis.com/", pool.name, f"/subject/{subject}"),
        )
    return Identities(provider, accounts)


def grant_project_roles(settings: BootstrapSettings, accounts: dict[str, gcp.serviceaccount.Account]) -> None:
    """The project roles of roles.py; project IAM admin only for the VM account's own roles."""
    table = {PREVIEW_ACCOUNT_ID: roles.PREVIEW_PROJECT_ROLES, DEPLOY_ACCOUNT_ID: roles.DEPLOY_PROJECT_ROLES}
    for account_id, granted in table.items():
        for role in granted:
            gcp.projects.IAMMember(
                f"{account_id}-{role.split('/')[-1].lower()}",
                project=settings.project,
                role=role,
                member=accounts[account_id].member,
            )
    gcp.projects.IAMMember(
        f"{DEPLOY_ACCOUNT_ID}-projectiamadmin",
        project=settings.project,
        role=roles.PROJECT_IAM_ADMIN,
        member=accounts[DEPLOY_ACCOUNT_ID].member,
        condition=gcp.projects.IAMMemberConditionArgs(
            title="only the VM account's roles",
            description="The deploy account grants and revokes only the roles the main program gives the VM.",
            expression=roles.grantable_roles_condition(),
        ),
    )
