"""The bootstrap program: APIs, identities, registries, state bucket and secrets key; outputs are
the values to paste into the GitHub repository's variables (docs/CI_CD.md)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from config.stack_settings import StackConfigError
from stacks.bootstrap.identity import declare_identities, grant_project_roles
from stacks.bootstrap.roles import DEPLOY_ACCOUNT_ID, PREVIEW_ACCOUNT_ID, RELEASE_ACCOUNT_ID
from stacks.bootstrap.settings import BootstrapSettings, parse_bootstrap_config
from stacks.bootstrap.storage import declare_storage, grant_resource_roles
from stacks.stack_config import raw_stack_config

REQUIRED_APIS = (
    # Service accounts, the workload identity pool and its provider.
    "iam.googleapis.com",
    # A federated job turns its token into a service account's access token through these two.
    "sts.googleapis.com",
    "iamcredentials.googleapis.com",
    # Project IAM bindings.
    "cloudresourcemanager.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudkms.googleapis.com",
    "storage.googleapis.com",
)


def declare_apis(settings: BootstrapSettings) -> list[gcp.projects.Service]:
    return [
        gcp.projects.Service(
            api.split(".")[0],
            project=settings.project,
            service=api,
            # The main program and other workloads use the same APIs: destroying this stack must not
            # switch them off.
            disable_on_destroy=False,
        )
        for api in REQUIRED_APIS
    ]


def deploy(settings: BootstrapSettings) -> dict[str, pulumi.Output[str]]:
    """Declare everything; return the outputs named as the repository variables they fill."""
    apis = declare_apis(settings)
    identities = declare_identities(settings, apis)
    grant_project_roles(settings, identities.accounts)
    storage = declare_storage(settings, apis)
    grant_resource_roles(storage, identities.accounts)
    emails = {account_id: account.email for account_id, account in identities.accounts.items()}
    return {
        "GCP_PROJECT": pulumi.Output.from_input(settings.project),
        "GCP_REGION": pulumi.Output.from_input(settings.region),
        "GCP_WORKLOAD_IDENTITY_PROVIDER": identities.provider.name,
        "GCP_PREVIEW_SERVICE_ACCOUNT": emails[PREVIEW_ACCOUNT_ID],
        "GCP_RELEASE_SERVICE_ACCOUNT": emails[RELEASE_ACCOUNT_ID],
        "GCP_DEPLOY_SERVICE_ACCOUNT": emails[DEPLOY_ACCOUNT_ID],
        "IMAGE_REGISTRY": storage.images.registry_uri,
        "BUILD_CACHE_REGISTRY": storage.cache.registry_uri,
        "PULUMI_BACKEND_URL": storage.state_bucket.url,
        "PULUMI_SECRETS_PROVIDER": storage.key.id.apply(lambda key: f"gcpkms://{key}"),
    }


def load_settings() -> BootstrapSettings:
    """Validated settings, or a clean stop naming every bad key (no stack trace)."""
    try:
        return parse_bootstrap_config(raw_stack_config())
    except StackConfigError as error:
        pulumi.log.error(str(error))
        raise pulumi.RunError(str(error)) from None


def main() -> None:
    for name, value in deploy(load_settings()).items():
        pulumi.export(name, value)
