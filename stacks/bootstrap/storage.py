"""Where CI/CD keeps things: image registries, the Pulumi state bucket and the secrets key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from stacks.bootstrap import roles
from stacks.bootstrap.roles import DEPLOY_ACCOUNT_ID, PREVIEW_ACCOUNT_ID, RELEASE_ACCOUNT_ID
from stacks.bootstrap.settings import BootstrapSettings

# Released images: tags are immutable, so a git-SHA tag always names the image it was pushed as.
IMAGES_REPOSITORY_ID = "mlops-images"
# BuildKit's registry cache rewrites one tag per image on every build: it needs mutable tags,
# hence a repository of its own that holds nothing a host ever runs.
CACHE_REPOSITORY_ID = "mlops-build-cache"
# Cache manifests older than this are deleted by Artifact Registry's cleanup policy.
CACHE_MAX_AGE = f"{14 * 24 * 3600}s"
KEY_RING_NAME = "pulumi"
KEY_NAME = "pulumi-secrets"
# Old checkpoints are kept as noncurrent versions: enough to roll a broken state back.
STATE_VERSIONS_KEPT = 50
DAY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Storage:
    images: gcp.artifactregistry.Repository
    cache: gcp.artifactregistry.Repository
    state_bucket: gcp.storage.Bucket
    key: gcp.kms.CryptoKey


def declare_storage(
    settings: BootstrapSettings, after: Sequence[pulumi.Resource], protect: bool = True
) -> Storage:
    options = pulumi.ResourceOptions(depends_on=list(after))
    kept = options.merge(pulumi.ResourceOptions(protect=protect))
    images = gcp.artifactregistry.Repository(
        "images",
        project=settings.project,
        location=settings.region,
        repository_id=IMAGES_REPOSITORY_ID,
        format="DOCKER",
        description="Images released by CI (tagged with the git SHA, deployed by digest).",
        docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
        opts=kept,
    )
    cache = gcp.artifactregistry.Repository(
        "build-cache",
        project=settings.project,
        location=settings.region,
        repository_id=CACHE_REPOSITORY_ID,
        format="DOCKER",
        # Off: the policy below deletes for real (a dry run only logs what it would delete).
        cleanup_policy_dry_run=False,
        description="BuildKit layer cache of the release builds (never deployed).",
        cleanup_policies=[
            gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                id="delete-old-cache",
                action="DELETE",
                condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                    tag_state="ANY", older_than=CACHE_MAX_AGE
                ),
            )
        ],
        opts=options,
    )
    return Storage(images, cache, _state_bucket(settings, kept), _secrets_key(settings, kept))


def _state_bucket(settings: BootstrapSettings, options: pulumi.ResourceOptions) -> gcp.storage.Bucket:
    return gcp.storage.Bucket(
        "pulumi-state",
        project=settings.project,
        # The name is global and immutable (a change replaces the bucket, and with it the state).
        name=settings.state_bucket_name,
        location=settings.region,
        # CIS GCP 5.2: IAM only, no object ACLs; and never public, whatever IAM says.
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        # Every checkpoint write keeps the one before it.
        versioning=gcp.storage.BucketVersioningArgs(enabled=True),
        lifecycle_rules=[
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    num_newer_versions=STATE_VERSIONS_KEPT, with_state="ARCHIVED"
                ),
            )
        ],
        force_destroy=False,
        opts=options,
    )


def _secrets_key(settings: BootstrapSettings, options: pulumi.ResourceOptions) -> gcp.kms.CryptoKey:
    # Key rings and keys cannot be deleted in GCP (only their versions): protected so a destroy
    # does not pretend to remove them.
    ring = gcp.kms.KeyRing(
        "pulumi-secrets", project=settings.project, location=settings.region, name=KEY_RING_NAME, opts=options
    )
    return gcp.kms.CryptoKey(
        "pulumi-secrets",
        key_ring=ring.id,
        name=KEY_NAME,
        purpose="ENCRYPT_DECRYPT",
        # CIS GCP 1.10: a new primary version at most every 90 days (old versions still decrypt).
        rotation_period=f"{settings.key_rotation_days * DAY_SECONDS}s",
        opts=options,
    )


def grant_resource_roles(storage: Storage, accounts: dict[str, gcp.serviceaccount.Account]) -> None:
    """Per-resource roles of roles.py, keyed by account id."""
    bucket_roles = {PREVIEW_ACCOUNT_ID: roles.STATE_READER, DEPLOY_ACCOUNT_ID: roles.STATE_WRITER}
    for account_id, role in bucket_roles.items():
        gcp.storage.BucketIAMMember(
            f"{account_id}-state",
            bucket=storage.state_bucket.name,
            role=role,
            member=accounts[account_id].member,
        )
    key_roles = {
        PREVIEW_ACCOUNT_ID: roles.SECRETS_DECRYPTER,
        DEPLOY_ACCOUNT_ID: roles.SECRETS_ENCRYPTER_DECRYPTER,
    }
    for account_id, role in key_roles.items():
        gcp.kms.CryptoKeyIAMMember(
            f"{account_id}-secrets",
            crypto_key_id=storage.key.id,
            role=role,
            member=accounts[account_id].member,
        )
    _let_deploy_grant_image_reads(storage, accounts[DEPLOY_ACCOUNT_ID])
    for name, repository in (("images", storage.images), ("cache", storage.cache)):
        gcp.artifactregistry.RepositoryIamMember(
            f"{RELEASE_ACCOUNT_ID}-{name}",
            project=repository.project,
            location=repository.location,
            repository=repository.name,
            role=roles.IMAGE_WRITER,
            member=accounts[RELEASE_ACCOUNT_ID].member,
        )


def _let_deploy_grant_image_reads(storage: Storage, deploy: gcp.serviceaccount.Account) -> None:
    """The deploy account may set the images repository's IAM policy (each stack's VM reads it)."""
    granter = gcp.projects.IAMCustomRole(
        roles.IMAGE_ACCESS_GRANTER_ROLE_ID,
        project=storage.images.project,
        role_id=roles.IMAGE_ACCESS_GRANTER_ROLE_ID,
        title="MLOps image access granter",
        description="Grant a stack's VM read access to the released images (one repository's IAM policy).",
        permissions=list(roles.IMAGE_ACCESS_GRANTER_PERMISSIONS),
    )
    gcp.artifactregistry.RepositoryIamMember(
        f"{DEPLOY_ACCOUNT_ID}-images-iam",
        project=storage.images.project,
        location=storage.images.location,
        repository=storage.images.name,
        role=granter.name,
        member=deploy.member,
    )
