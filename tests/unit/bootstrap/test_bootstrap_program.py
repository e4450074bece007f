"""The bootstrap program under the repo's Pulumi mocks (tests/support/pulumi_harness.py): what it
declares, what it grants to whom, and what it outputs for the repository's variables."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pytest
import yaml

from policy.cis_gcp import RULES
from stacks.bootstrap import identity, program, roles, storage
from stacks.bootstrap.program import deploy, load_settings
from stacks.bootstrap.settings import PROJECT_NAME
from stacks.compute import REPLICA_DISCOVERY_ROLE, SERVICE_ACCOUNT_ROLES
from tests.support.policy_harness import violations
from tests.support.pulumi_harness import (
    BUCKET,
    BUCKET_IAM_MEMBER,
    IAM_MEMBER,
    REPO_ROOT,
    SERVICE,
    TEST_GCP_PROJECT,
    Deployment,
    RecordingMocks,
    RecordingMonitor,
)

BOOTSTRAP_DIR = REPO_ROOT / "bootstrap"
STACK_FILE = BOOTSTRAP_DIR / "Pulumi.ci.yaml"
TEST_PROJECT_NUMBER = "123456789012"

POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
POOL_PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
ACCOUNT_IAM_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPOSITORY_IAM_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
KEY_RING = "gcp:kms/keyRing:KeyRing"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
CRYPTO_KEY_IAM_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"


class BootstrapMocks(RecordingMocks):
    """The repo's recording mocks, plus what GCP computes for the bootstrap's own resource kinds."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        inputs = args.inputs
        pool_path = f"projects/{TEST_PROJECT_NUMBER}/locations/global/workloadIdentityPools"
        if args.typ == POOL:
            state["name"] = f"{pool_path}/{inputs['workloadIdentityPoolId']}"
        elif args.typ == POOL_PROVIDER:
            pool, provider = inputs["workloadIdentityPoolId"], inputs["workloadIdentityPoolProviderId"]
            state["name"] = f"{pool_path}/{pool}/providers/{provider}"
        elif args.typ == "gcp:serviceaccount/account:Account":
            state["member"] = f"serviceAccount:{state['email']}"
            state["name"] = f"projects/{inputs['project']}/serviceAccounts/{state['email']}"
        elif args.typ == REPOSITORY:
            state["name"] = inputs["repositoryId"]
            state["registryUri"] = f"{inputs['location']}-docker.pkg.dev/{inputs['project']}/{state['name']}"
        elif args.typ == "gcp:storage/bucket:Bucket":
            state["name"] = inputs["name"]
            state["url"] = f"gs://{inputs['name']}"
        elif args.typ == KEY_RING:
            resource_id = (
                f"projects/{inputs['project']}/locations/{inputs['location']}/keyRings/{inputs['name']}"
            )
        elif args.typ == CRYPTO_KEY:
            resource_id = f"{inputs['keyRing']}/cryptoKeys/{inputs['name']}"
        elif args.typ == CUSTOM_ROLE:
            state["name"] = f"projects/{inputs['project']}/roles/{inputs['roleId']}"
        return resource_id, state


def bootstrap_config(overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The engine's flat config for bootstrap/Pulumi.ci.yaml: project defaults, then the stack file."""
    project = yaml.safe_load((BOOTSTRAP_DIR / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {
        f"{PROJECT_NAME}:{key}": declaration["default"]
        for key, declaration in project["config"].items()
        if "default" in declaration
    }
    values.update(yaml.safe_load(STACK_FILE.read_text())["config"])
    values.setdefault("gcp:project", TEST_GCP_PROJECT)
    values.update(overrides or {})
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def run_bootstrap(config: Mapping[str, str]) -> Deployment:
    mocks = BootstrapMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT_NAME, stack="ci", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    collected: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        outputs = deploy(load_settings())

        async def resolve() -> None:
            collected["values"] = {name: await output.future() for name, output in outputs.items()}

        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    program()
    return Deployment(monitor.registrations, collected["values"], set(), mocks.calls)


@pytest.fixture(scope="module")
def bootstrap() -> Deployment:
    return run_bootstrap(bootstrap_config())


REPOSITORY_NAME = "example-org/mlops-platform"


def member_of(account_id: str) -> str:
    return f"serviceAccount:{account_id}@{TEST_GCP_PROJECT}.iam.gserviceaccount.com"


def grants(deployment: Deployment, member: str) -> set[str]:
    """Every role `member` holds anywhere (project, bucket, key, repository, account)."""
    return {r.inputs["role"] for r in deployment.registrations if r.inputs.get("member") == member}


def test_the_provider_trusts_only_this_repositorys_github_tokens(bootstrap: Deployment) -> None:
    provider = bootstrap.one(POOL_PROVIDER).inputs
    assert provider["oidc"]["issuerUri"] == identity.GITHUB_OIDC_ISSUER
    assert provider["attributeCondition"] == f"assertion.repository == '{REPOSITORY_NAME}'"
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    assert provider["workloadIdentityPoolId"] == bootstrap.one(POOL).inputs["workloadIdentityPoolId"]


def test_each_account_is_usable_by_one_exact_github_subject(bootstrap: Deployment) -> None:
    pool = f"projects/{TEST_PROJECT_NUMBER}/locations/global/workloadIdentityPools/{identity.POOL_ID}"
    bindings = {
        "serviceAccount:" + r.inputs["serviceAccountId"].split("/")[-1]: r.inputs["member"]
        for r in bootstrap.of_type(ACCOUNT_IAM_MEMBER)
    }
    principal = f"principal://iam.googleapis.com/{pool}/subject/repo:{REPOSITORY_NAME}"
    assert bindings == {
        member_of(roles.PREVIEW_ACCOUNT_ID): f"{principal}:pull_request",
        member_of(roles.RELEASE_ACCOUNT_ID): f"{principal}:environment:release",
        member_of(roles.DEPLOY_ACCOUNT_ID): f"{principal}:environment:production",
    }
    assert {r.inputs["role"] for r in bootstrap.of_type(ACCOUNT_IAM_MEMBER)} == {roles.WORKLOAD_IDENTITY_USER}


def test_the_preview_account_can_read_but_not_change_anything(bootstrap: Deployment) -> None:
    assert grants(bootstrap, member_of(roles.PREVIEW_ACCOUNT_ID)) == {
        "roles/compute.viewer",
        roles.STATE_READER,
        roles.SECRETS_DECRYPTER,
    }


def test_the_release_account_can_only_push_images(bootstrap: Deployment) -> None:
    assert grants(bootstrap, member_of(roles.RELEASE_ACCOUNT_ID)) == {roles.IMAGE_WRITER}
    pushed_to = {
        r.inputs["repository"]
        for r in bootstrap.of_type(REPOSITORY_IAM_MEMBER)
        if r.inputs["member"] == member_of(roles.RELEASE_ACCOUNT_ID)
    }
    assert pushed_to == {storage.IMAGES_REPOSITORY_ID, storage.CACHE_REPOSITORY_ID}


def test_the_deploy_account_may_only_set_the_images_repositorys_policy(bootstrap: Deployment) -> None:
    # The main program grants each stack's VM account read access to the released images.
    (custom,) = bootstrap.of_type(CUSTOM_ROLE)
    assert sorted(custom.inputs["permissions"]) == sorted(roles.IMAGE_ACCESS_GRANTER_PERMISSIONS)
    assert custom.inputs["roleId"] == roles.IMAGE_ACCESS_GRANTER_ROLE_ID
    granted = [
        r.inputs
        for r in bootstrap.of_type(REPOSITORY_IAM_MEMBER)
        if r.inputs["member"] == member_of(roles.DEPLOY_ACCOUNT_ID)
    ]
    assert [g["repository"] for g in granted] == [storage.IMAGES_REPOSITORY_ID]
    assert granted[0]["role"].endswith(f"/roles/{roles.IMAGE_ACCESS_GRANTER_ROLE_ID}")


def test_no_ci_account_holds_an_admin_role_or_a_key(bootstrap: Deployment) -> None:
    held = {r.inputs["role"] for r in bootstrap.registrations if "role" in r.inputs}
    assert not held & set(roles.FORBIDDEN_ROLES)
    assert not bootstrap.of_type("gcp:serviceaccount/key:Key")


def test_the_deploy_account_may_grant_only_the_vms_own_roles(bootstrap: Deployment) -> None:
    iam_admin = [r for r in bootstrap.of_type(IAM_MEMBER) if r.inputs["role"] == roles.PROJECT_IAM_ADMIN]
    assert len(iam_admin) == 1
    expression = iam_admin[0].inputs["condition"]["expression"]
    assert "modifiedGrantsByRole" in expression
    grantable = (*SERVICE_ACCOUNT_ROLES, REPLICA_DISCOVERY_ROLE)
    assert all(f"'{role}'" in expression for role in grantable)
    assert expression.count("'roles/") == len(grantable)
    unconditional = {
        r.inputs["role"]
        for r in bootstrap.of_type(IAM_MEMBER)
        if r.inputs["member"] == member_of(roles.DEPLOY_ACCOUNT_ID) and "condition" not in r.inputs
    }
    assert unconditional == set(roles.DEPLOY_PROJECT_ROLES)


def test_the_deploy_account_may_tunnel_ssh_through_iap_and_no_other_account_may(
    bootstrap: Deployment,
) -> None:
    # `sshVia: iap`: the runner's provisioning SSH goes through IAP TCP forwarding, which checks
    # iap.tunnelInstances.accessViaIAP (held by this role).
    tunnel_users = [
        r.inputs["member"]
        for r in bootstrap.of_type(IAM_MEMBER)
        if r.inputs["role"] == "roles/iap.tunnelResourceAccessor"
    ]
    assert tunnel_users == [member_of(roles.DEPLOY_ACCOUNT_ID)]


def test_released_images_have_immutable_tags_and_the_cache_expires(bootstrap: Deployment) -> None:
    repositories = {r.inputs["repositoryId"]: r for r in bootstrap.of_type(REPOSITORY)}
    images, cache = repositories[storage.IMAGES_REPOSITORY_ID], repositories[storage.CACHE_REPOSITORY_ID]
    assert images.inputs["format"] == cache.inputs["format"] == "DOCKER"
    assert images.inputs["dockerConfig"] == {"immutableTags": True}
    assert images.protect
    assert cache.inputs["cleanupPolicies"][0]["condition"]["olderThan"] == storage.CACHE_MAX_AGE
    assert cache.inputs["cleanupPolicyDryRun"] is False


def test_the_state_bucket_is_private_versioned_and_protected(bootstrap: Deployment) -> None:
    bucket = bootstrap.one(BUCKET)
    assert bucket.inputs["name"] == f"{TEST_GCP_PROJECT}-pulumi-state"
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.protect
    readers = {r.inputs["member"]: r.inputs["role"] for r in bootstrap.of_type(BUCKET_IAM_MEMBER)}
    assert readers == {
        member_of(roles.PREVIEW_ACCOUNT_ID): roles.STATE_READER,
        member_of(roles.DEPLOY_ACCOUNT_ID): roles.STATE_WRITER,
    }


def test_the_secrets_key_rotates_within_90_days(bootstrap: Deployment) -> None:
    key = bootstrap.one(CRYPTO_KEY)
    assert key.inputs["rotationPeriod"] == f"{90 * 24 * 3600}s"
    assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"
    assert key.protect
    assert bootstrap.one(KEY_RING).protect


def test_every_api_is_on_before_the_resources_and_stays_on_after_destroy(bootstrap: Deployment) -> None:
    services = bootstrap.of_type(SERVICE)
    assert {s.inputs["service"] for s in services} == set(program.REQUIRED_APIS)
    assert all(s.inputs["disableOnDestroy"] is False for s in services)
    service_urns = {s.urn for s in services}
    for kind in (POOL, REPOSITORY, BUCKET, KEY_RING):
        for resource in bootstrap.of_type(kind):
            assert service_urns <= set(resource.dependencies), resource.name


def test_outputs_are_the_repository_variables_the_workflows_read(bootstrap: Deployment) -> None:
    outputs = bootstrap.outputs
    registry = f"europe-west1-docker.pkg.dev/{TEST_GCP_PROJECT}"
    assert outputs["GCP_WORKLOAD_IDENTITY_PROVIDER"] == (
        f"projects/{TEST_PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
        f"{identity.POOL_ID}/providers/{identity.PROVIDER_ID}"
    )
    assert outputs["GCP_DEPLOY_SERVICE_ACCOUNT"] == member_of(roles.DEPLOY_ACCOUNT_ID).split(":")[1]
    assert outputs["IMAGE_REGISTRY"] == f"{registry}/{storage.IMAGES_REPOSITORY_ID}"
    assert outputs["BUILD_CACHE_REGISTRY"] == f"{registry}/{storage.CACHE_REPOSITORY_ID}"
    assert outputs["PULUMI_BACKEND_URL"] == f"gs://{TEST_GCP_PROJECT}-pulumi-state"
    assert outputs["PULUMI_SECRETS_PROVIDER"] == (
        f"gcpkms://projects/{TEST_GCP_PROJECT}/locations/europe-west1/keyRings/"
        f"{storage.KEY_RING_NAME}/cryptoKeys/{storage.KEY_NAME}"
    )
    workflow_variables = set(re.findall(r"vars\.([A-Z_]+)", workflows_text()))
    assert workflow_variables
    assert workflow_variables <= set(outputs)


def test_every_cis_rule_of_the_policy_pack_passes_on_every_resource(bootstrap: Deployment) -> None:
    for resource in bootstrap.registrations:
        for rule in RULES:
            assert violations(rule, resource.type, resource.inputs) == [], (rule, resource.name)


def test_a_bad_repository_stops_the_program_naming_the_key() -> None:
    with pytest.raises(Exception, match=f"{PROJECT_NAME}:githubRepository: "):
        run_bootstrap(bootstrap_config({f"{PROJECT_NAME}:githubRepository": "not a repo"}))


def workflows_text() -> str:
    return "\n".join(path.read_text() for path in sorted((REPO_ROOT / ".github/workflows").glob("*.yml")))
