"""`pulumi up` with CI's image digests: the VM pulls them, allowed to read their repository only."""

from __future__ import annotations

import json
import shlex

import pytest

from policy.cis_gcp import RULES
from stacks.image_digests import ENV_IMAGE_DIGESTS, ImageDigestsError, to_json
from stacks.registry_access import IMAGE_READER_ROLE
from tests.support.policy_harness import violations
from tests.support.pulumi_harness import (
    INSTANCE,
    LOCAL_COMMAND,
    SERVICE_ACCOUNT,
    Deployment,
    engine_config,
    run_program,
    stack_files,
)
from tests.unit.stacks.test_image_digests import released

REPOSITORY_IAM_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
DEVSTORAGE_READ = ("devstorage.read_only", "devstorage.read_write", "devstorage.full_control")


def deploy_with(monkeypatch: pytest.MonkeyPatch, digests: str | None) -> Deployment:
    if digests is None:
        monkeypatch.delenv(ENV_IMAGE_DIGESTS, raising=False)
    else:
        monkeypatch.setenv(ENV_IMAGE_DIGESTS, digests)
    return run_program(engine_config(stack_files()[0]))


def entry_point_argv(deployment: Deployment) -> list[str]:
    return shlex.split(deployment.one(LOCAL_COMMAND).inputs["create"])


def test_digests_go_to_the_entry_point_as_registry_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    digests = released()
    argv = entry_point_argv(deploy_with(monkeypatch, json.dumps(digests, indent=2)))
    assert argv[argv.index("--image-delivery") + 1] == "registry"
    assert json.loads(argv[argv.index("--image-digests") + 1]) == digests
    # Canonical JSON in the command: the command (the provisioning trigger) changes with a digest.
    assert argv[argv.index("--image-digests") + 1] == to_json(digests)


def test_a_new_digest_changes_the_provisioning_command(monkeypatch: pytest.MonkeyPatch) -> None:
    first = released()
    second = {**first, next(iter(first)): next(iter(first.values()))[:-1] + "f"}
    before = deploy_with(monkeypatch, to_json(first)).one(LOCAL_COMMAND).inputs["create"]
    after = deploy_with(monkeypatch, to_json(second)).one(LOCAL_COMMAND).inputs["create"]
    assert before != after


def test_the_vm_account_may_read_the_images_repository_only(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy_with(monkeypatch, to_json(released()))
    member = deployment.one(REPOSITORY_IAM_MEMBER)
    account = deployment.one(SERVICE_ACCOUNT).inputs["accountId"]
    assert member.inputs["project"] == "my-project"
    assert member.inputs["location"] == "europe-west1"
    assert member.inputs["repository"] == "mlops-images"
    assert member.inputs["role"] == IMAGE_READER_ROLE == "roles/artifactregistry.reader"
    assert member.inputs["member"] == f"serviceAccount:{account}@test-project-123.iam.gserviceaccount.com"
    # Provisioning (the pull) waits for the grant.
    assert member.urn in deployment.one(LOCAL_COMMAND).dependencies
    for name in RULES:
        assert violations(name, member.type, member.inputs) == [], name


def test_the_vm_scopes_admit_artifact_registry_reads_without_cloud_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scopes = deploy_with(monkeypatch, to_json(released())).one(INSTANCE).inputs["serviceAccount"]["scopes"]
    assert any(scope.endswith(DEVSTORAGE_READ) for scope in scopes)
    assert not any(scope.endswith("cloud-platform") for scope in scopes)


def test_images_outside_artifact_registry_get_no_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy_with(monkeypatch, to_json(released("registry.example.org/mlops")))
    assert deployment.of_type(REPOSITORY_IAM_MEMBER) == []
    assert "--image-digests" in entry_point_argv(deployment)


def test_without_digests_the_archive_path_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy_with(monkeypatch, None)
    argv = entry_point_argv(deployment)
    assert "--image-digests" not in argv
    assert "--image-delivery" not in argv  # the entry point's default: archive
    assert deployment.of_type(REPOSITORY_IAM_MEMBER) == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"mlops-platform/api:0.1.0": "x"}), "missing"),
        (
            to_json(
                {
                    **released(),
                    "mlops-platform/api:0.1.0": released("us-docker.pkg.dev/p/other")[
                        "mlops-platform/api:0.1.0"
                    ],
                }
            ),
            "one Artifact Registry repository",
        ),
    ],
)
def test_bad_digests_stop_the_program_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    with pytest.raises(ImageDigestsError) as raised:
        deploy_with(monkeypatch, value)
    assert ENV_IMAGE_DIGESTS in str(raised.value) or says == "one Artifact Registry repository"
    assert says in str(raised.value)
