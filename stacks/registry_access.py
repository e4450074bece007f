"""The VM's right to pull the released images: Artifact Registry's reader role on one repository.

Granted on the repository (`gcp.artifactregistry.RepositoryIamMember`), not the project: the VM's
account reads the stack's images and nothing else. A member resource adds one binding and leaves
the repository's other bindings (the release account's writer role, made by the bootstrap stack)
alone, which a `RepositoryIamPolicy` or `RepositoryIamBinding` would overwrite.

Scopes: the VM's OAuth scopes (stacks/compute.py) must also admit the pull. Artifact Registry takes
Cloud Storage's `devstorage.read_only` scope (or any wider one) for downloads, and the VM has
`devstorage.read_write` for its backups, so no scope is added (and never `cloud-platform`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from stacks.image_digests import ArtifactRepository

IMAGE_READER_ROLE = "roles/artifactregistry.reader"


def grant_image_reads(
    name: str,
    repository: ArtifactRepository,
    reader_email: pulumi.Input[str],
    after: Sequence[pulumi.Resource] = (),
) -> gcp.artifactregistry.RepositoryIamMember:
    """`roles/artifactregistry.reader` on the repository for the VM's service account.

    project, location and repository are ForceNew in the provider's schema
    (ArtifactRegistryRepositoryIamSchema in terraform-provider-google's
    iam_artifact_registry_repository.go): a move to another repository replaces the member, and
    Pulumi's default replacement grants on the new repository before removing the old grant."""
    return gcp.artifactregistry.RepositoryIamMember(
        f"{name}-image-reader",
        project=repository.project,
        location=repository.location,
        repository=repository.repository,
        role=IMAGE_READER_ROLE,
        member=pulumi.Output.concat("serviceAccount:", reader_email),
        opts=pulumi.ResourceOptions(depends_on=list(after)),
    )
