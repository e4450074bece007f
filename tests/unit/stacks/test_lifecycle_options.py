"""What a real `pulumi up`/`destroy` depends on beyond inputs: APIs, replacement order, protection,
retention, ids unique per stack and the disk size guard, all as the mock engine recorded them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from config.stack_layout import DATA_DISK_DEVICE_NAME
from config.stack_settings import SNAPSHOT_RETENTION_LABEL as RETENTION_LABEL
from config.stack_settings import StackConfigError
from stacks.apis import REQUIRED_APIS
from stacks.backup_bucket import WRITER_ROLE
from stacks.naming import GcpIds
from stacks.provision_env import mlflow_api_password, mlflow_promoter_password
from tests.support.pulumi_harness import (
    ADDRESS,
    BUCKET,
    BUCKET_IAM_MEMBER,
    DISK,
    GET_DISK,
    INSTANCE,
    POLICY_ATTACHMENT,
    PRIVATE_KEY,
    RANDOM_PASSWORD,
    RESOURCE_POLICY,
    SERVICE,
    SERVICE_ACCOUNT,
    Deployment,
    InvokeFailedError,
    RecordingMocks,
    engine_config,
    run_program,
    stack_files,
)

DEV = stack_files()[0]
SERVICE_ACCOUNT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


def deploy(overrides: dict[str, Any] | None = None, mocks: RecordingMocks | None = None) -> Deployment:
    return run_program(engine_config(DEV, overrides), mocks=mocks)


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return deploy()


def test_apis_are_enabled_first_and_never_disabled_on_destroy(deployment: Deployment) -> None:
    services = deployment.of_type(SERVICE)
    assert {service.inputs["service"] for service in services} == set(REQUIRED_APIS)
    assert {"compute.googleapis.com", "iam.googleapis.com", "storage.googleapis.com"} <= set(REQUIRED_APIS)
    assert all(service.inputs["disableOnDestroy"] is False for service in services)
    service_urns = {service.urn for service in services}
    gcp_resources = [r for r in deployment.registrations if r.type.startswith("gcp:") and r.type != SERVICE]
    assert len(gcp_resources) >= 10
    for resource in gcp_resources:
        assert service_urns <= set(resource.dependencies), resource.name


def test_the_vm_is_deleted_before_its_replacement_is_created(deployment: Deployment) -> None:
    assert deployment.one(INSTANCE).delete_before_replace is True
    # The address is its own resource, untouched by a VM replacement: nothing to delete first.
    assert deployment.one(ADDRESS).delete_before_replace is False
    # One snapshot schedule per disk: a new one is attached only after the old one is removed.
    assert deployment.one(POLICY_ATTACHMENT).delete_before_replace is True


STATEFUL = (INSTANCE, ADDRESS, DISK, BUCKET, RANDOM_PASSWORD, PRIVATE_KEY)


@pytest.mark.parametrize("protection", [True, False])
def test_deletion_protection_protects_the_stateful_resources(protection: bool) -> None:
    deployment = deploy({"mlops-platform:deletionProtection": protection})
    assert deployment.one(INSTANCE).inputs["deletionProtection"] is protection
    for resource_type in STATEFUL:
        for resource in deployment.of_type(resource_type):
            assert resource.protect is protection, resource.name
    # Replaceable on every change (provisioning reruns, rules): never protected.
    unprotected = [r for r in deployment.registrations if r.type not in STATEFUL]
    assert unprotected
    assert not any(resource.protect for resource in unprotected)


@pytest.mark.parametrize("retain", [True, False])
def test_the_data_disk_and_the_bucket_outlive_a_destroy_unless_told(retain: bool) -> None:
    deployment = deploy({"mlops-platform:retainDataDisk": retain})
    assert deployment.one(DISK).retain_on_delete is retain
    assert deployment.one(BUCKET).retain_on_delete is retain
    assert deployment.one(INSTANCE).retain_on_delete is False


def test_the_data_disk_is_attached_under_the_configured_device_name(deployment: Deployment) -> None:
    disk = deployment.one(DISK)
    assert disk.inputs["name"] == GcpIds.of("dev").data_disk
    assert disk.inputs["size"] == 10  # Pulumi.dev.yaml
    assert disk.inputs["type"] == "pd-balanced"
    assert disk.inputs["labels"][RETENTION_LABEL] == "3"
    (attached,) = deployment.one(INSTANCE).inputs["attachedDisks"]
    assert attached["deviceName"] == DATA_DISK_DEVICE_NAME
    assert attached["source"].endswith(f"/{disk.name}")
    assert attached["mode"] == "READ_WRITE"


def test_daily_snapshots_are_kept_for_the_configured_days() -> None:
    deployment = deploy({"mlops-platform:snapshotRetentionDays": 14})
    policy = deployment.one(RESOURCE_POLICY).inputs["snapshotSchedulePolicy"]
    assert policy["schedule"]["dailySchedule"]["daysInCycle"] == 1
    assert policy["retentionPolicy"] == {"maxRetentionDays": 14, "onSourceDiskDelete": "KEEP_AUTO_SNAPSHOTS"}
    assert policy["snapshotProperties"]["labels"][RETENTION_LABEL] == "14"
    assert policy["snapshotProperties"]["labels"]["managed-by"] == "pulumi"
    attachment = deployment.one(POLICY_ATTACHMENT).inputs
    assert attachment["name"] == deployment.one(RESOURCE_POLICY).name
    assert attachment["disk"] == GcpIds.of("dev").data_disk


def test_the_backup_bucket_is_private_versioned_and_expires_backups() -> None:
    deployment = deploy({"mlops-platform:backupRetentionDays": 45})
    bucket = deployment.one(BUCKET).inputs
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["versioning"] == {"enabled": True}
    assert bucket["forceDestroy"] is False
    assert bucket["location"] == "EUROPE-WEST1"
    ages = [rule["condition"].get("age") for rule in bucket["lifecycleRules"]]
    assert 45 in ages
    assert all(rule["action"]["type"] == "Delete" for rule in bucket["lifecycleRules"])
    assert deployment.outputs["backupBucket"] == f"{deployment.one(BUCKET).name}-a1b2c3d"


def test_the_vm_may_only_create_objects_in_the_backup_bucket(deployment: Deployment) -> None:
    (binding,) = deployment.of_type(BUCKET_IAM_MEMBER)
    account = deployment.one(SERVICE_ACCOUNT).inputs["accountId"]
    assert binding.inputs["role"] == WRITER_ROLE == "roles/storage.objectCreator"
    assert binding.inputs["member"] == f"serviceAccount:{account}@test-project-123.iam.gserviceaccount.com"
    assert binding.inputs["bucket"] == deployment.outputs["backupBucket"]
    scopes = deployment.one(INSTANCE).inputs["serviceAccount"]["scopes"]
    assert "https://www.googleapis.com/auth/devstorage.read_write" in scopes


def test_the_mlflow_password_is_a_secret_output(deployment: Deployment) -> None:
    assert "mlflowAdminPassword" in deployment.secret_outputs
    assert deployment.outputs["mlflowAdminPassword"] == "generated-password-of-mlops-dev-mlflow-admin"


def test_the_promoters_mlflow_password_is_a_secret_output_derived_from_the_admins(
    deployment: Deployment,
) -> None:
    # The same derivation as the password the playbooks write for MLflow's `promoter` user.
    assert "mlflowPromoterPassword" in deployment.secret_outputs
    admin = "generated-password-of-mlops-dev-mlflow-admin"
    assert deployment.outputs["mlflowPromoterPassword"] == mlflow_promoter_password(admin)
    assert deployment.outputs["mlflowPromoterPassword"] != mlflow_api_password(admin)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Dev", "dev"),
        ("team-alpha-production-europe", "team-alpha-production-asia"),
        ("a_b", "a-b"),
    ],
)
def test_stacks_that_look_alike_get_different_gcp_ids(first: str, second: str) -> None:
    one, other = GcpIds.of(first), GcpIds.of(second)
    assert one.service_account != other.service_account
    assert one.instance != other.instance
    assert one.data_disk != other.data_disk


@pytest.mark.parametrize("stack", ["x", "Dev", "a" * 200, "prod-eu-west-1-blue-green", "___", "über-stack"])
def test_gcp_ids_are_valid_for_any_stack_name(stack: str) -> None:
    ids = GcpIds.of(stack)
    assert SERVICE_ACCOUNT_ID.match(ids.service_account), ids.service_account
    for name in (ids.instance, ids.data_disk):
        assert re.match(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", name), name


def test_the_program_uses_the_hashed_ids() -> None:
    deployment = run_program(engine_config(DEV), stack="Dev")
    ids = GcpIds.of("Dev")
    assert deployment.one(SERVICE_ACCOUNT).inputs["accountId"] == ids.service_account
    assert deployment.one(INSTANCE).inputs["name"] == ids.instance
    assert ids != GcpIds.of("dev")


def existing_disks(sizes: dict[str, int]) -> RecordingMocks:
    """GCP already holds disks of these names and sizes (others: not found)."""

    def get_disk(args: dict[str, Any]) -> dict[str, Any]:
        name = args["name"]
        if name not in sizes:
            raise InvokeFailedError(f"projects/p/zones/z/disks/{name} not found")  # the provider's words
        return {"id": f"projects/{args['project']}/zones/{args['zone']}/disks/{name}", "size": sizes[name]}

    return RecordingMocks({GET_DISK: get_disk})


@pytest.mark.parametrize(("key", "disk"), [("bootDiskSizeGb", "instance"), ("dataDiskSizeGb", "data_disk")])
def test_a_smaller_disk_is_refused_before_anything_is_declared(key: str, disk: str) -> None:
    mocks = existing_disks({getattr(GcpIds.of("dev"), disk): 50})
    with pytest.raises(StackConfigError) as caught:
        deploy({f"mlops-platform:{key}": 30}, mocks)
    assert caught.value.problems == [
        f"mlops-platform:{key}: 30 GB is smaller than the existing disk (50 GB); "
        "GCE cannot shrink a disk: set 50 or more"
    ]
    assert mocks.inputs == {}  # refused before any resource


def test_the_same_or_a_larger_disk_passes_and_an_existing_data_disk_is_adopted() -> None:
    ids = GcpIds.of("dev")
    mocks = existing_disks({ids.instance: 20, ids.data_disk: 20})
    deployment = deploy({"mlops-platform:dataDiskSizeGb": 40}, mocks)
    disk = deployment.one(DISK)
    assert disk.inputs["size"] == 40
    # A disk kept by an earlier destroy (or this stack's own, same id: no-op) is imported.
    assert disk.import_id == f"projects/test-project-123/zones/europe-west1-b/disks/{ids.data_disk}"
    looked_up = sorted(args["name"] for token, args in deployment.calls if token == GET_DISK)
    assert looked_up == sorted([ids.instance, ids.data_disk])


def test_a_first_up_finds_no_disk_and_imports_nothing() -> None:
    deployment = deploy(mocks=existing_disks({}))
    assert deployment.one(DISK).import_id == ""


def test_a_fresh_project_without_the_compute_api_still_deploys() -> None:
    """The first preview runs before the APIs are on: the size lookup fails, nothing is compared."""

    def api_off(args: dict[str, Any]) -> dict[str, Any]:
        raise InvokeFailedError(
            "Compute Engine API has not been used in project 123 before or it is disabled"
        )

    mocks = RecordingMocks({GET_DISK: api_off})
    deployment = deploy({"mlops-platform:dataDiskSizeGb": 10}, mocks)
    assert deployment.one(DISK).inputs["size"] == 10
    assert deployment.one(DISK).import_id == ""
