"""What each CI/CD service account may do, and why: least privilege per job kind.

Three identities, each bound to one kind of GitHub job by its token's exact `sub` claim:
  preview  pull requests (`repo:OWNER/NAME:pull_request`): `pulumi preview` of the main program.
  release  the release environment: pushes images to Artifact Registry, nothing else.
  deploy   the production environment (reviewers): `pulumi up` of the main program.
"""

from __future__ import annotations

from stacks.compute import REPLICA_DISCOVERY_ROLE, SERVICE_ACCOUNT_ROLES

# Account ids (6-30 chars): the email is <id>@<project>.iam.gserviceaccount.com.
PREVIEW_ACCOUNT_ID = "ci-preview"
RELEASE_ACCOUNT_ID = "ci-release"
DEPLOY_ACCOUNT_ID = "ci-deploy"

# Project roles of the preview account. A preview reads the state and calls the program's data
# sources (the data disk, the VM's guest attributes): all Compute Engine reads. It never refreshes
# (pulumi/actions' `refresh` stays false), so no other read is needed, and it writes nothing.
PREVIEW_PROJECT_ROLES = ("roles/compute.viewer",)

# Project roles of the deploy account: exactly the resource kinds the main program declares.
DEPLOY_PROJECT_ROLES = (
    # The VM, its data disk and the disk's snapshot schedule (resource policies).
    "roles/compute.instanceAdmin.v1",
    # The network, subnetwork and static address.
    "roles/compute.networkAdmin",
    # Firewall rules (networkAdmin may read them but not create them).
    "roles/compute.securityAdmin",
    # The VM's own service account.
    "roles/iam.serviceAccountAdmin",
    # Attaching that service account to the VM (actAs).
    "roles/iam.serviceAccountUser",
    # The program switches on the APIs it needs (stacks/apis.py).
    "roles/serviceusage.serviceUsageAdmin",
    # The backup bucket and its IAM binding.
    "roles/storage.admin",
    # `sshVia: iap`: provisioning's SSH through Identity-Aware Proxy TCP forwarding. This role holds
    # exactly iap.tunnelInstances.accessViaIAP and iap.tunnelDestGroups.accessViaIAP (IAM's
    # Identity-Aware Proxy roles page); gcloud's instance lookup is covered by instanceAdmin.v1.
    "roles/iap.tunnelResourceAccessor",
)

# The program grants the VM's service account its log and metric writer roles at project level
# (and, with an API group, Compute read-only for Prometheus's discovery of the replicas).
# Project IAM admin is needed for that, but only with a condition limiting which roles it may
# grant or revoke, so the deploy account can never grant itself (or anyone) owner.
PROJECT_IAM_ADMIN = "roles/resourcemanager.projectIamAdmin"
GRANTABLE_ROLES = (*SERVICE_ACCOUNT_ROLES, REPLICA_DISCOVERY_ROLE)


def grantable_roles_condition() -> str:
    """CEL of IAM's delegated role grants: only these roles may appear in a policy change."""
    roles = ", ".join(f"'{role}'" for role in GRANTABLE_ROLES)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{roles}])"


# Per-resource roles (bound on the bucket, key or repository, never on the project).
STATE_READER = "roles/storage.objectViewer"  # preview: read the checkpoint (a preview takes no lock)
STATE_WRITER = "roles/storage.objectUser"  # deploy: write checkpoints and lock files
SECRETS_DECRYPTER = "roles/cloudkms.cryptoKeyDecrypter"  # preview: read the stack's secrets
SECRETS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"  # deploy: also new secrets
IMAGE_WRITER = "roles/artifactregistry.writer"  # release: push images and build cache
# Deploy: the main program grants each stack's VM account `roles/artifactregistry.reader` on the
# images repository (stacks/registry_access.py), which needs the repository's setIamPolicy. No
# predefined role short of Artifact Registry admin holds it, so a custom role with only these
# permissions, bound on the images repository alone (not the project, not the cache).
IMAGE_ACCESS_GRANTER_ROLE_ID = "mlopsImageAccessGranter"
IMAGE_ACCESS_GRANTER_PERMISSIONS = (
    "artifactregistry.repositories.get",
    "artifactregistry.repositories.getIamPolicy",
    "artifactregistry.repositories.setIamPolicy",
)
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"

# Roles no CI identity may ever hold (CIS GCP 1.5: no admin role on a service account).
FORBIDDEN_ROLES = ("roles/owner", "roles/editor", "roles/iam.serviceAccountTokenCreator")
