"""Every policy of the pack on a resource that passes and on one that fails, via its validate function."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE

from config import edge
from config.api_group import GOOGLE_FRONT_END_RANGES, VM_TAG
from config.replica_discovery import REPLICA_TAG
from config.services import SERVICES
from policy.cis_gcp import RULES, policies
from tests.support.policy_harness import PolicyCannotRunError, violations
from tests.support.pulumi_harness import RecordingMocks, engine_config, run_program, stack_files

INSTANCE = "gcp:compute/instance:Instance"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
BUCKET_BINDING = "gcp:storage/bucketIAMBinding:BucketIAMBinding"
BUCKET_POLICY = "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"
DISK = "gcp:compute/disk:Disk"
RESOURCE_POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
FIREWALL = "gcp:compute/firewall:Firewall"
NETWORK = "gcp:compute/network:Network"

GOOD_INSTANCE: dict[str, Any] = {
    # The stack's edge VM: the one instance with an external address.
    "tags": [VM_TAG],
    "networkInterfaces": [{"subnetwork": "projects/p/regions/r/subnetworks/mlops", "accessConfigs": [{}]}],
    "serviceAccount": {
        "email": "mlops-dev-vm@p.iam.gserviceaccount.com",
        "scopes": ["https://www.googleapis.com/auth/logging.write"],
    },
    "metadata": {"block-project-ssh-keys": "true", "serial-port-enable": "false"},
    "canIpForward": False,
    "shieldedInstanceConfig": {
        "enableSecureBoot": True,
        "enableVtpm": True,
        "enableIntegrityMonitoring": True,
    },
}
GOOD_SSH_RULE: dict[str, Any] = {
    "network": "projects/p/global/networks/mlops-vpc",
    "direction": "INGRESS",
    "allows": [{"protocol": "tcp", "ports": ["22"]}],
    "sourceRanges": ["203.0.113.0/24"],
}
# An API replica's template: no access config, its own tag, the scope Secret Manager needs.
GOOD_TEMPLATE: dict[str, Any] = {
    **copy.deepcopy(GOOD_INSTANCE),
    "tags": [REPLICA_TAG],
    "networkInterfaces": [{"subnetwork": "projects/p/regions/r/subnetworks/mlops"}],
    "serviceAccount": {
        "email": "mlops-dev-api@p.iam.gserviceaccount.com",
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
    },
}
GOOD_HEALTH_CHECK_RULE: dict[str, Any] = {
    "network": "projects/p/global/networks/mlops-vpc",
    "direction": "INGRESS",
    "allows": [{"protocol": "tcp", "ports": [str(SERVICES.api.port)]}],
    "sourceRanges": list(GOOGLE_FRONT_END_RANGES),
    "targetTags": [REPLICA_TAG],
}
GOOD_NETWORK: dict[str, Any] = {"name": "mlops-vpc", "autoCreateSubnetworks": False}
GOOD_BUCKET: dict[str, Any] = {"publicAccessPrevention": "enforced", "uniformBucketLevelAccess": True}
GOOD_MEMBER: dict[str, Any] = {
    "role": "roles/storage.objectCreator",
    "member": "serviceAccount:vm@p.iam.gserviceaccount.com",
}
GOOD_DISK: dict[str, Any] = {"size": 20, "labels": {"snapshot-retention-days": "7"}}
GOOD_SCHEDULE: dict[str, Any] = {
    "snapshotSchedulePolicy": {
        "retentionPolicy": {"maxRetentionDays": 7.0},
        "snapshotProperties": {"labels": {"snapshot-retention-days": "7"}},
    }
}


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(base)
    result.update(changes)
    return result


# (policy, resource type, passing props, failing props)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "cis-5.1-bucket-not-public",
        BUCKET,
        GOOD_BUCKET,
        changed(GOOD_BUCKET, publicAccessPrevention="inherited"),
    ),
    ("cis-5.1-bucket-not-public", BUCKET_MEMBER, GOOD_MEMBER, changed(GOOD_MEMBER, member="allUsers")),
    (
        "cis-5.1-bucket-not-public",
        BUCKET_BINDING,
        {"members": [GOOD_MEMBER["member"]]},
        {"members": [GOOD_MEMBER["member"], "allAuthenticatedUsers"]},
    ),
    (
        "cis-5.1-bucket-not-public",
        BUCKET_POLICY,
        {"policyData": '{"bindings": [{"members": ["serviceAccount:vm@p.iam.gserviceaccount.com"]}]}'},
        {"policyData": '{"bindings": [{"role": "roles/storage.objectViewer", "members": ["allUsers"]}]}'},
    ),
    (
        "cis-5.2-bucket-uniform-access",
        BUCKET,
        GOOD_BUCKET,
        changed(GOOD_BUCKET, uniformBucketLevelAccess=False),
    ),
    ("snapshot-retention", DISK, GOOD_DISK, changed(GOOD_DISK, labels={"team": "ml"})),
    ("snapshot-retention", DISK, GOOD_DISK, changed(GOOD_DISK, labels={"snapshot-retention-days": "0"})),
    (
        "snapshot-retention",
        RESOURCE_POLICY,
        GOOD_SCHEDULE,
        {"snapshotSchedulePolicy": {"snapshotProperties": {"labels": {"snapshot-retention-days": "7"}}}},
    ),
    (
        "snapshot-retention",
        RESOURCE_POLICY,
        GOOD_SCHEDULE,
        {
            "snapshotSchedulePolicy": {
                "retentionPolicy": {"maxRetentionDays": 30.0},
                "snapshotProperties": {"labels": {"snapshot-retention-days": "7"}},
            }
        },
    ),
    ("cis-3.1-no-default-network", NETWORK, GOOD_NETWORK, changed(GOOD_NETWORK, name="default")),
    ("cis-3.1-no-default-network", NETWORK, GOOD_NETWORK, {"name": "auto"}),
    ("cis-3.1-no-default-network", FIREWALL, GOOD_SSH_RULE, changed(GOOD_SSH_RULE, network="default")),
    (
        "cis-3.1-no-default-network",
        INSTANCE,
        GOOD_INSTANCE,
        changed(GOOD_INSTANCE, networkInterfaces=[{"network": "global/networks/default"}]),
    ),
    (
        "cis-3.6-no-ssh-from-internet",
        FIREWALL,
        GOOD_SSH_RULE,
        changed(GOOD_SSH_RULE, sourceRanges=["203.0.113.0/24", "0.0.0.0/0"]),
    ),
    (
        "cis-3.6-no-ssh-from-internet",
        FIREWALL,
        changed(GOOD_SSH_RULE, sourceRanges=["0.0.0.0/0"], allows=[{"protocol": "tcp", "ports": ["8000"]}]),
        changed(GOOD_SSH_RULE, sourceRanges=["::/0"], allows=[{"protocol": "tcp", "ports": ["20-30"]}]),
    ),
    (
        "cis-3.6-no-ssh-from-internet",
        FIREWALL,
        changed(GOOD_SSH_RULE, sourceRanges=["0.0.0.0/0"], direction="EGRESS"),
        changed(GOOD_SSH_RULE, sourceRanges=["0.0.0.0/0"], allows=[{"protocol": "all"}]),
    ),
    (
        "cis-3.7-no-rdp",
        FIREWALL,
        GOOD_SSH_RULE,
        changed(GOOD_SSH_RULE, allows=[{"protocol": "tcp", "ports": ["3389"]}]),
    ),
    (
        "cis-3.7-no-rdp",
        FIREWALL,
        changed(GOOD_SSH_RULE, allows=[{"protocol": "udp", "ports": ["3389"]}]),
        changed(GOOD_SSH_RULE, allows=[{"protocol": "tcp", "ports": ["3000-4000"]}]),
    ),
    (
        "cis-4.1-no-default-service-account",
        INSTANCE,
        GOOD_INSTANCE,
        changed(
            GOOD_INSTANCE,
            serviceAccount={"email": "123456789012-compute@developer.gserviceaccount.com", "scopes": []},
        ),
    ),
    (
        "cis-4.1-no-default-service-account",
        TEMPLATE,
        GOOD_INSTANCE,
        changed(GOOD_INSTANCE, serviceAccount={"email": "default", "scopes": []}),
    ),
    (
        "cis-4.2-no-full-api-scope",
        INSTANCE,
        GOOD_INSTANCE,
        changed(
            GOOD_INSTANCE,
            serviceAccount={
                "email": "mlops-dev-vm@p.iam.gserviceaccount.com",
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            },
        ),
    ),
    (
        "cis-4.2-no-full-api-scope",
        TEMPLATE,
        GOOD_TEMPLATE,
        # The replicas' exception goes with their tag, not with the template type.
        changed(GOOD_TEMPLATE, tags=["web"]),
    ),
    (
        "cis-4.9-no-public-ip",
        TEMPLATE,
        GOOD_TEMPLATE,
        changed(GOOD_TEMPLATE, networkInterfaces=GOOD_INSTANCE["networkInterfaces"]),
    ),
    (
        "cis-4.9-no-public-ip",
        INSTANCE,
        GOOD_INSTANCE,
        # Only the edge VM's tag admits an address; a replica-tagged or untagged instance not.
        changed(GOOD_INSTANCE, tags=[REPLICA_TAG]),
    ),
    (
        "cis-4.9-no-public-ip",
        TEMPLATE,
        GOOD_TEMPLATE,
        # A template is never the edge VM, whatever its tags.
        changed(GOOD_TEMPLATE, tags=[VM_TAG], networkInterfaces=[{"ipv6AccessConfigs": [{}]}]),
    ),
    (
        "health-checks-from-google-only",
        FIREWALL,
        GOOD_HEALTH_CHECK_RULE,
        changed(GOOD_HEALTH_CHECK_RULE, sourceRanges=[*GOOGLE_FRONT_END_RANGES, "0.0.0.0/0"]),
    ),
    (
        "health-checks-from-google-only",
        FIREWALL,
        # A subnet of Google's range is within it; tags of the stack's VMs name no range at all.
        changed(GOOD_HEALTH_CHECK_RULE, sourceRanges=["35.191.4.0/24"]),
        changed(GOOD_HEALTH_CHECK_RULE, sourceRanges=["130.211.0.0/16"]),
    ),
    (
        "no-service-port",
        FIREWALL,
        GOOD_HEALTH_CHECK_RULE,
        changed(GOOD_HEALTH_CHECK_RULE, sourceRanges=["203.0.113.0/24"]),
    ),
    (
        "no-service-port",
        FIREWALL,
        # MLflow from the replicas by tag: no address range at all.
        changed(
            GOOD_HEALTH_CHECK_RULE,
            sourceRanges=[],
            sourceTags=[REPLICA_TAG],
            targetTags=[VM_TAG],
            allows=[{"protocol": "tcp", "ports": [str(SERVICES.mlflow.port)]}],
        ),
        # Google's ranges are for the API's port only.
        changed(GOOD_HEALTH_CHECK_RULE, allows=[{"protocol": "tcp", "ports": [str(SERVICES.mlflow.port)]}]),
    ),
    (
        "cis-4.3-block-project-ssh-keys",
        INSTANCE,
        GOOD_INSTANCE,
        changed(GOOD_INSTANCE, metadata={"serial-port-enable": "false"}),
    ),
    (
        "cis-4.5-serial-port-disabled",
        INSTANCE,
        GOOD_INSTANCE,
        changed(GOOD_INSTANCE, metadata={"block-project-ssh-keys": "true", "serial-port-enable": "TRUE"}),
    ),
    (
        "cis-4.5-serial-port-disabled",
        INSTANCE,
        GOOD_INSTANCE,
        changed(GOOD_INSTANCE, metadata={"block-project-ssh-keys": "true"}),
    ),
    ("cis-4.6-no-ip-forwarding", INSTANCE, GOOD_INSTANCE, changed(GOOD_INSTANCE, canIpForward=True)),
    (
        "cis-4.8-shielded-vm",
        INSTANCE,
        GOOD_INSTANCE,
        changed(
            GOOD_INSTANCE, shieldedInstanceConfig={"enableVtpm": True, "enableIntegrityMonitoring": True}
        ),
    ),
    (
        "cis-4.8-shielded-vm",
        INSTANCE,
        GOOD_INSTANCE,
        changed(
            GOOD_INSTANCE,
            shieldedInstanceConfig={
                "enableSecureBoot": True,
                "enableVtpm": False,
                "enableIntegrityMonitoring": True,
            },
        ),
    ),
]


@pytest.mark.parametrize(
    ("policy_name", "resource_type", "passing", "failing"),
    CASES,
    ids=[f"{case[0]}-{case[1].rsplit(':', 1)[-1]}-{index}" for index, case in enumerate(CASES)],
)
def test_policy_passes_good_and_reports_bad_resource(
    policy_name: str, resource_type: str, passing: dict[str, Any], failing: dict[str, Any]
) -> None:
    assert violations(policy_name, resource_type, passing) == []
    assert len(violations(policy_name, resource_type, failing)) >= 1


def test_every_policy_has_a_passing_and_a_failing_case() -> None:
    assert {case[0] for case in CASES} == set(RULES)


@pytest.mark.parametrize("service", SERVICES.all(), ids=lambda service: service.name)
def test_no_firewall_rule_may_open_a_service_port(service: Any) -> None:
    through_edge = changed(
        GOOD_SSH_RULE,
        allows=[{"protocol": "tcp", "ports": [str(edge.PUBLIC_HTTP_PORT), str(edge.PUBLIC_HTTPS_PORT)]}],
    )
    assert violations("no-service-port", FIREWALL, through_edge) == []
    # Even from an admin range: services are reached through the edge or an SSH tunnel only.
    opening = changed(GOOD_SSH_RULE, allows=[{"protocol": "tcp", "ports": [str(service.port)]}])
    reported = violations("no-service-port", FIREWALL, opening)
    assert len(reported) == 1
    assert service.name in reported[0]


def test_a_port_range_over_services_names_each_of_them() -> None:
    ports = sorted(service.port for service in SERVICES.all())
    opening = changed(GOOD_SSH_RULE, allows=[{"protocol": "tcp", "ports": [f"{ports[0]}-{ports[-1]}"]}])
    assert len(violations("no-service-port", FIREWALL, opening)) == len(ports)


def test_policies_ignore_resource_types_they_do_not_govern() -> None:
    unrelated = {"name": "default", "canIpForward": True, "member": "allUsers", "labels": {}}
    for name in RULES:
        assert violations(name, "gcp:pubsub/topic:Topic", unrelated) == []


def test_every_policy_is_mandatory_and_named_after_its_rule() -> None:
    built = policies()
    assert [policy.name for policy in built] == list(RULES)
    for policy in built:
        assert isinstance(policy, ResourceValidationPolicy)
        assert policy.enforcement_level is EnforcementLevel.MANDATORY
        assert policy.description


def test_the_pack_covers_the_cis_gcp_items_for_network_vms_and_buckets() -> None:
    required = {"3.1", "3.6", "3.7", "4.1", "4.2", "4.3", "4.5", "4.6", "4.8", "4.9", "5.1", "5.2"}
    assert {rule.cis_item for rule in RULES.values()} - {"-"} == required


def test_metadata_policies_run_at_a_first_preview_where_ssh_keys_are_unknown() -> None:
    """Run the program as a first preview (nothing computed yet) and feed the VM's inputs, as the
    engine sent them, through pulumi-policy's unknown-checking proxy: only `ssh-keys` is unknown,
    so the metadata policies run, and still catch a bad value next to it."""
    deployment = run_program(
        engine_config(stack_files()[0]), mocks=RecordingMocks(computed=False), preview=True
    )
    vm = deployment.one(INSTANCE).wire_inputs
    assert vm["metadata"]["ssh-keys"] == UNKNOWN_STRING_VALUE
    for name in ("cis-4.3-block-project-ssh-keys", "cis-4.5-serial-port-disabled"):
        assert violations(name, INSTANCE, vm) == []
    bad = copy.deepcopy(vm)
    bad["metadata"].update({"block-project-ssh-keys": "false", "serial-port-enable": "true"})
    assert len(violations("cis-4.3-block-project-ssh-keys", INSTANCE, bad)) == 1
    assert len(violations("cis-4.5-serial-port-disabled", INSTANCE, bad)) == 1


def test_a_wholly_unknown_metadata_map_would_keep_the_policies_from_running() -> None:
    """Why metadata is a plain map: an unknown map (one Output) makes the engine skip the policy."""
    unknown_map = changed(GOOD_INSTANCE, metadata=UNKNOWN_OBJECT_VALUE)
    with pytest.raises(PolicyCannotRunError, match="can't be known during preview"):
        violations("cis-4.3-block-project-ssh-keys", INSTANCE, unknown_map)
