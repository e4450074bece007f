"""Scale-out under mocks: apiReplicas 1 is the single VM unchanged; apiReplicas 3 adds the API group,
its identity, egress and load balancer, each as narrow as its job.

Only the GCP API and the Pulumi engine are mocked; the startup script is the real one
(stacks/replica_startup.py), which the e2e runs on a test host.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from typing import Any

import pytest

from config import api_group as facts
from config import edge
from config.api_group import GOOGLE_FRONT_END_RANGES, VM_TAG
from config.replica_discovery import REPLICA_TAG
from config.services import API_IMAGE, SERVICES
from config.stack_settings import StackConfigError, parse_stack_config
from policy.cis_gcp import RULES
from stacks.api_scale_out import ReplicaStartup, group_zones
from stacks.image_digests import ENV_IMAGE_DIGESTS, to_json
from stacks.naming import GcpIds, ReplicaIds
from stacks.provision_env import mlflow_api_password
from stacks.replica_identity import CLOUD_PLATFORM_SCOPE, SECRET_ACCESSOR_ROLE
from stacks.replica_startup import startup_script
from tests.support.policy_harness import SECRET_SIGNATURE, unwrap_secrets, violations
from tests.support.pulumi_harness import (
    FAKE_INTERNAL_IP,
    FAKE_LB_IP,
    FIREWALL,
    GET_ZONES,
    GLOBAL_ADDRESS,
    IAM_MEMBER,
    INSTANCE,
    INSTANCE_TEMPLATE,
    RANDOM_PASSWORD,
    REGION_MIG,
    SECRET_VERSION,
    SERVICE,
    SERVICE_ACCOUNT,
    SUBNETWORK,
    Deployment,
    RecordingMocks,
    engine_config,
    run_program,
    stack_files,
)
from tests.unit.stacks.test_image_digests import released

HEALTH_CHECK = "gcp:compute/healthCheck:HealthCheck"
AUTOSCALER = "gcp:compute/regionAutoscaler:RegionAutoscaler"
BACKEND = "gcp:compute/backendService:BackendService"
URL_MAP = "gcp:compute/uRLMap:URLMap"
HTTPS_PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
HTTP_PROXY = "gcp:compute/targetHttpProxy:TargetHttpProxy"
FORWARDING_RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
MANAGED_CERT = "gcp:compute/managedSslCertificate:ManagedSslCertificate"
SSL_CERT = "gcp:compute/sSLCertificate:SSLCertificate"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
SECRET = "gcp:secretmanager/secret:Secret"
SECRET_IAM = "gcp:secretmanager/secretIamMember:SecretIamMember"
REPOSITORY_IAM = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
ROUTER = "gcp:compute/router:Router"
ROUTER_NAT = "gcp:compute/routerNat:RouterNat"
NETWORK = "gcp:compute/network:Network"
GROUP_TYPES = {
    INSTANCE_TEMPLATE, REGION_MIG, HEALTH_CHECK, AUTOSCALER, BACKEND, URL_MAP, HTTPS_PROXY, HTTP_PROXY,
    FORWARDING_RULE, MANAGED_CERT, SSL_CERT, SELF_SIGNED, GLOBAL_ADDRESS, SECRET, SECRET_VERSION, SECRET_IAM,
    ROUTER, ROUTER_NAT,
}  # fmt: skip
# The region's zones as Compute Engine lists them (not sorted; one of them down today).
REGION_ZONES = ["europe-west1-d", "europe-west1-b", "europe-west1-c", "europe-west1-a"]
SCALE_OUT = {"mlops-platform:apiReplicas": 3, "mlops-platform:apiMaxReplicas": 5}
DOMAIN = "api.example.org"


def deploy(overrides: dict[str, Any], digests: str | None = None, stack: str = "dev") -> Deployment:
    mocks = RecordingMocks({GET_ZONES: lambda _args: {"names": REGION_ZONES}})
    environ = {ENV_IMAGE_DIGESTS: digests if digests is not None else to_json(released())}
    return run_program(
        engine_config(stack_files()[0], overrides),
        stack=stack,
        mocks=mocks,
        deploy_options={"environ": environ},
    )


@pytest.fixture(scope="module")
def scaled() -> Deployment:
    return deploy(SCALE_OUT)


def by_name(deployment: Deployment, resource_type: str, suffix: str) -> dict[str, Any]:
    (found,) = [r for r in deployment.of_type(resource_type) if r.name.endswith(suffix)]
    return found.inputs


def startup_of(deployment: Deployment) -> str:
    script: str = deployment.one(INSTANCE_TEMPLATE).inputs["metadataStartupScript"]
    return script


# --- apiReplicas 1: the single VM, unchanged -------------------------------------------------------


# What the dev stack declares at apiReplicas 1, by type: the program before scale-out existed.
SINGLE_VM_INVENTORY = {
    "mlops:gcp:ProjectApis": 1, SERVICE: 6, "mlops:gcp:Network": 1, NETWORK: 1, SUBNETWORK: 1, FIREWALL: 2,
    "mlops:ssh:DeployKey": 1, "tls:index/privateKey:PrivateKey": 1, "mlops:gcp:DataDisk": 1,
    "gcp:compute/disk:Disk": 1, "gcp:compute/resourcePolicy:ResourcePolicy": 1,
    "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment": 1, "mlops:gcp:Compute": 1,
    SERVICE_ACCOUNT: 1, IAM_MEMBER: 2, "gcp:compute/address:Address": 1, INSTANCE: 1,
    "mlops:gcp:BackupBucket": 1, "gcp:storage/bucket:Bucket": 1,
    "gcp:storage/bucketIAMMember:BucketIAMMember": 1,
    "mlops:provisioning:Provisioning": 1, RANDOM_PASSWORD: 2, "command:remote:Command": 1,
    "command:local:Command": 1, REPOSITORY_IAM: 1,
    # The outside watch (stacks/uptime.py); no channel without alert receivers in the config.
    "mlops:gcp:Uptime": 1, "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": 1,
    "gcp:monitoring/alertPolicy:AlertPolicy": 1,
}  # fmt: skip


def inventory(deployment: Deployment) -> Counter[str]:
    # The engine's root (pulumi:pulumi:Stack) is registered once per test process, not per program.
    return Counter(r.type for r in deployment.registrations if not r.type.startswith("pulumi:"))


def test_one_replica_declares_the_single_vm_and_nothing_of_the_group() -> None:
    deployment = deploy({})
    assert inventory(deployment) == SINGLE_VM_INVENTORY
    assert {r.inputs["service"] for r in deployment.of_type(SERVICE)}.isdisjoint(
        {"secretmanager.googleapis.com"}
    )
    assert deployment.outputs["apiUrl"] == f"https://{deployment.outputs['externalIp']}/"
    assert "apiLoadBalancerIp" not in deployment.outputs


def test_one_replica_needs_no_digests() -> None:
    assert deploy({}, digests="").one(INSTANCE).inputs["tags"] == [VM_TAG]


def test_scale_out_without_digests_is_a_config_error_naming_api_replicas() -> None:
    with pytest.raises(StackConfigError, match="apiReplicas") as raised:
        deploy(SCALE_OUT, digests="")
    assert "MLOPS_IMAGE_DIGESTS" in str(raised.value)


# --- apiReplicas 3: what it adds --------------------------------------------------------------------


# What apiReplicas 3 adds to the single VM's inventory (the docs' list of resources and costs).
ADDED_AT_SCALE_OUT = {
    "mlops:gcp:ReplicaIdentity": 1, "mlops:gcp:CloudNat": 1,
    "mlops:gcp:ApiGroup": 1, "mlops:gcp:LoadBalancer": 1,
    SERVICE: 1,  # secretmanager.googleapis.com
    FIREWALL: 3,  # LB/health checks -> replicas, replicas -> MLflow, Prometheus -> replicas
    IAM_MEMBER: 3,  # replicas' log and metric writers; the management VM's compute.viewer (discovery)
    SERVICE_ACCOUNT: 1, REPOSITORY_IAM: 1, SECRET: 1, SECRET_VERSION: 1, SECRET_IAM: 1,
    ROUTER: 1, ROUTER_NAT: 1, INSTANCE_TEMPLATE: 1, HEALTH_CHECK: 1, REGION_MIG: 1, AUTOSCALER: 1,
    GLOBAL_ADDRESS: 1, BACKEND: 1, URL_MAP: 2, HTTPS_PROXY: 1, HTTP_PROXY: 1, FORWARDING_RULE: 2,
    # No domain: a self-signed certificate (its key, the certificate, GCP's copy of both).
    "tls:index/privateKey:PrivateKey": 1, SELF_SIGNED: 1, SSL_CERT: 1,
    # A second uptime check, on the load balancer (the VM's edge keeps its own).
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": 1,
}  # fmt: skip


def test_scale_out_adds_the_group_and_keeps_every_single_vm_resource(scaled: Deployment) -> None:
    counts = inventory(scaled)
    assert not Counter(SINGLE_VM_INVENTORY) - counts
    assert counts - Counter(SINGLE_VM_INVENTORY) == ADDED_AT_SCALE_OUT
    assert "secretmanager.googleapis.com" in {r.inputs["service"] for r in scaled.of_type(SERVICE)}


def test_template_boots_debian_without_a_public_ip_as_a_shielded_replica(scaled: Deployment) -> None:
    settings = parse_stack_config(engine_config(stack_files()[0], SCALE_OUT))
    template = scaled.one(INSTANCE_TEMPLATE).inputs
    # Prefixes up to 37 characters get a timestamp and counter, not a collision-prone short UUID.
    assert template["namePrefix"] == "mlops-dev-api-"
    assert len(template["namePrefix"]) <= 37
    assert "name" not in template
    assert template["machineType"] == settings.api_machine_type
    (disk,) = template["disks"]
    assert disk["boot"] is True
    assert disk["sourceImage"] == settings.boot_image
    assert "debian" in settings.boot_image
    (interface,) = template["networkInterfaces"]
    assert not interface.get("accessConfigs")
    assert not interface.get("ipv6AccessConfigs")
    assert interface["subnetwork"].endswith(f"/x/{scaled.one(SUBNETWORK).name}")
    assert template["tags"] == [REPLICA_TAG]
    assert template["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableVtpm": True,
        "enableIntegrityMonitoring": True,
    }
    assert template["metadata"]["serial-port-enable"] == "false"
    assert "ssh-keys" not in template["metadata"]


def test_startup_script_gets_the_digest_mlflow_inside_and_the_secret_version(scaled: Deployment) -> None:
    script = startup_of(scaled)
    version = scaled.one(SECRET_VERSION)
    startup = ReplicaStartup(
        api_image=released()[API_IMAGE],
        registry_logins=("europe-west1-docker.pkg.dev",),
        mlflow_url=f"http://{FAKE_INTERNAL_IP}:{SERVICES.mlflow.port}",
        password_secret_version=f"projects/test-project-123/secrets/{version.inputs['secret']}/versions/1",
    )
    # The real script (stacks/replica_startup.py) of exactly what the program knows.
    assert script == startup_script(startup)
    assert "@sha256:" in startup.api_image
    assert f"readonly api_image={startup.api_image}" in script
    assert f"MLOPS_TRACKING_URI={startup.mlflow_url}" in script
    assert f"readonly password_secret={startup.password_secret_version}" in script
    assert ipaddress.ip_address(FAKE_INTERNAL_IP).is_private


def test_the_api_password_reaches_the_replicas_through_secret_manager_only(scaled: Deployment) -> None:
    admin = next(r for r in scaled.of_type(RANDOM_PASSWORD) if "mlflow" in r.name)
    password = mlflow_api_password(f"generated-password-of-{admin.name}")
    version = scaled.one(SECRET_VERSION)
    # A secret (the engine's secret signature wraps it): the state holds it encrypted.
    assert SECRET_SIGNATURE in version.inputs["secretData"]
    assert unwrap_secrets(version.inputs["secretData"]) == password
    new = [r for r in scaled.registrations if r.type in GROUP_TYPES and r.type != SECRET_VERSION]
    for registration in new:
        assert password not in json.dumps(registration.inputs), registration.name


def test_replicas_run_as_their_own_account_with_four_grants(scaled: Deployment) -> None:
    vm_account, replica_account = sorted(
        (r.inputs["accountId"] for r in scaled.of_type(SERVICE_ACCOUNT)),
        key=lambda name: name.endswith("-api"),
    )
    email = f"{replica_account}@test-project-123.iam.gserviceaccount.com"
    member = f"serviceAccount:{email}"
    template = scaled.one(INSTANCE_TEMPLATE).inputs
    assert template["serviceAccount"] == {"email": email, "scopes": [CLOUD_PLATFORM_SCOPE]}
    assert vm_account != replica_account
    assert len(replica_account) <= 30
    project_roles = {r.inputs["role"] for r in scaled.of_type(IAM_MEMBER) if r.inputs["member"] == member}
    assert project_roles == {"roles/logging.logWriter", "roles/monitoring.metricWriter"}
    (reader,) = [r.inputs for r in scaled.of_type(REPOSITORY_IAM) if r.inputs["member"] == member]
    assert reader["role"] == "roles/artifactregistry.reader"
    assert reader["repository"] == "mlops-images"
    secret_grant = scaled.one(SECRET_IAM).inputs
    assert (secret_grant["role"], secret_grant["member"]) == (SECRET_ACCESSOR_ROLE, member)
    assert secret_grant["secretId"] == scaled.one(SECRET).inputs["secretId"]


def test_health_check_asks_the_api_for_ready(scaled: Deployment) -> None:
    check = scaled.one(HEALTH_CHECK).inputs
    assert check["httpHealthCheck"] == {"port": SERVICES.api.port, "requestPath": "/ready"}


def test_regional_group_heals_on_ready_and_rolls_without_losing_capacity(scaled: Deployment) -> None:
    group = scaled.one(REGION_MIG)
    inputs = group.inputs
    assert inputs["region"] == "europe-west1"
    assert inputs["distributionPolicyZones"] == ["europe-west1-a", "europe-west1-b", "europe-west1-c"]
    assert scaled.outputs["apiZones"] == "europe-west1-a,europe-west1-b,europe-west1-c"
    assert inputs["namedPorts"] == [{"name": facts.NAMED_PORT, "port": SERVICES.api.port}]
    (version,) = inputs["versions"]
    assert version["instanceTemplate"].endswith("?uniqueId=4711")
    assert inputs["autoHealingPolicies"] == {
        "healthCheck": f"{scaled.one(HEALTH_CHECK).name}-id",
        "initialDelaySec": facts.BOOT_SECONDS,
    }
    policy = inputs["updatePolicy"]
    assert (policy["type"], policy["maxUnavailableFixed"]) == ("PROACTIVE", 0)
    # A regional group's surge is 0 or at least its zones; 0 with max_unavailable 0 could not roll.
    assert policy["maxSurgeFixed"] >= len(inputs["distributionPolicyZones"])
    assert "targetSize" not in inputs
    assert inputs["waitForInstances"] is False


def test_autoscaler_bounds_the_group_and_holds_the_cpu_target(scaled: Deployment) -> None:
    autoscaler = scaled.one(AUTOSCALER).inputs
    assert autoscaler["target"] == f"{scaled.one(REGION_MIG).name}-id"
    policy = autoscaler["autoscalingPolicy"]
    assert (policy["minReplicas"], policy["maxReplicas"]) == (3, 5)
    assert policy["cpuUtilization"]["target"] == pytest.approx(0.60)
    assert policy["cooldownPeriod"] >= facts.BOOT_SECONDS


def test_load_balancer_serves_https_and_redirects_http(scaled: Deployment) -> None:
    backend = scaled.one(BACKEND).inputs
    assert backend["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert (backend["protocol"], backend["portName"]) == ("HTTP", facts.NAMED_PORT)
    assert backend["healthChecks"] == f"{scaled.one(HEALTH_CHECK).name}-id"
    (target,) = backend["backends"]
    assert target["group"].endswith(f"{scaled.one(REGION_MIG).name}-ig")
    assert backend["connectionDrainingTimeoutSec"] == facts.CONNECTION_DRAINING_SECONDS
    address = scaled.one(GLOBAL_ADDRESS)
    https = by_name(scaled, FORWARDING_RULE, "-https")
    http = by_name(scaled, FORWARDING_RULE, "-http")
    assert (https["portRange"], http["portRange"]) == ("443", "80")
    for rule in (https, http):
        assert rule["ipAddress"] == f"{address.name}-id"
        assert rule["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert https["target"] == f"{scaled.one(HTTPS_PROXY).name}-id"
    assert http["target"] == f"{scaled.one(HTTP_PROXY).name}-id"
    redirect = by_name(scaled, URL_MAP, "-http-redirect")
    assert redirect["defaultUrlRedirect"]["httpsRedirect"] is True
    assert "defaultService" not in redirect
    assert by_name(scaled, URL_MAP, "-https")["defaultService"] == f"{scaled.one(BACKEND).name}-id"
    assert scaled.outputs["apiUrl"] == f"https://{FAKE_LB_IP}/"
    assert scaled.outputs["apiLoadBalancerIp"] == FAKE_LB_IP


def test_without_a_domain_the_certificate_is_self_signed_for_the_address(scaled: Deployment) -> None:
    assert not scaled.of_type(MANAGED_CERT)
    cert = scaled.one(SELF_SIGNED).inputs
    assert cert["ipAddresses"] == [FAKE_LB_IP]
    assert "server_auth" in cert["allowedUses"]
    assert scaled.one(HTTPS_PROXY).inputs["sslCertificates"] == [f"{scaled.one(SSL_CERT).name}-id"]


def test_with_a_domain_the_certificate_is_google_managed() -> None:
    deployment = deploy({**SCALE_OUT, "mlops-platform:domain": DOMAIN})
    assert not deployment.of_type(SSL_CERT)
    assert not deployment.of_type(SELF_SIGNED)
    managed = deployment.one(MANAGED_CERT)
    assert managed.inputs["managed"] == {"domains": [DOMAIN]}
    assert deployment.one(HTTPS_PROXY).inputs["sslCertificates"] == [f"{managed.name}-id"]
    assert deployment.outputs["apiUrl"] == f"https://{DOMAIN}/"


def rule_named(deployment: Deployment, name: str) -> dict[str, Any]:
    return by_name(deployment, FIREWALL, f"-{name}")


def test_health_checks_reach_the_replicas_from_googles_ranges_only(scaled: Deployment) -> None:
    rule = rule_named(scaled, "allow-lb-to-replicas")
    assert rule["sourceRanges"] == list(GOOGLE_FRONT_END_RANGES) == ["35.191.0.0/16", "130.211.0.0/22"]
    assert rule["targetTags"] == [REPLICA_TAG]
    assert rule["allows"] == [{"protocol": "tcp", "ports": [str(SERVICES.api.port)]}]


def test_mlflow_is_opened_to_the_replicas_only(scaled: Deployment) -> None:
    rule = rule_named(scaled, "allow-replicas-to-mlflow")
    assert rule["sourceTags"] == [REPLICA_TAG]
    assert rule["targetTags"] == [VM_TAG]
    assert "sourceRanges" not in rule
    assert rule["allows"] == [{"protocol": "tcp", "ports": [str(SERVICES.mlflow.port)]}]
    scrape = rule_named(scaled, "allow-prometheus-to-replicas")
    assert (scrape["sourceTags"], scrape["targetTags"]) == ([VM_TAG], [REPLICA_TAG])
    # No address range reaches MLflow, Prometheus or Grafana.
    internal = {str(SERVICES.mlflow.port), str(SERVICES.prometheus.port), str(SERVICES.grafana.port)}
    for registration in scaled.of_type(FIREWALL):
        ports = {port for allow in registration.inputs["allows"] for port in allow["ports"]}
        if registration.inputs.get("sourceRanges"):
            assert not ports & internal, registration.name


def test_replicas_leave_through_cloud_nat_on_the_stack_subnet(scaled: Deployment) -> None:
    router = scaled.one(ROUTER).inputs
    assert router["network"] == f"{scaled.one(NETWORK).name}-id"
    nat = scaled.one(ROUTER_NAT).inputs
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetworks"] == [
        {"name": f"{scaled.one(SUBNETWORK).name}-id", "sourceIpRangesToNats": ["ALL_IP_RANGES"]}
    ]
    assert scaled.one(SUBNETWORK).inputs["privateIpGoogleAccess"] is True


def test_first_boot_waits_for_grants_egress_and_provisioning(scaled: Deployment) -> None:
    depended = {
        (scaled.by_urn(urn).type, scaled.by_urn(urn).name) for urn in scaled.one(REGION_MIG).dependencies
    }
    types = {resource_type for resource_type, _ in depended}
    assert {SECRET_VERSION, SECRET_IAM, ROUTER_NAT, REPOSITORY_IAM, IAM_MEMBER} <= types
    # MLflow holds the API's user once the entry point ran (depending on the component reaches it).
    assert ("command:local:Command", "mlops-dev-run") in depended


def test_every_scale_out_resource_passes_every_policy(scaled: Deployment) -> None:
    for registration in scaled.registrations:
        for name in RULES:
            assert violations(name, registration.type, registration.inputs) == [], (name, registration.name)


def test_every_scale_out_resource_sits_under_its_component(scaled: Deployment) -> None:
    components = {r.urn for r in scaled.registrations if r.type.startswith("mlops:")}
    for registration in scaled.registrations:
        # The repository grants are declared at top level, as the single VM's (stacks/registry_access.py).
        if registration.type in GROUP_TYPES:
            assert registration.parent in components, registration.name


def test_the_new_policies_run_at_a_first_preview() -> None:
    """At a first preview nothing is computed; the tags, ranges and interfaces the new policies read
    are plain values, so the engine enforces them then (an unknown would make it skip them)."""
    mocks = RecordingMocks({GET_ZONES: lambda _args: {"names": REGION_ZONES}}, computed=False)
    deployment = run_program(
        engine_config(stack_files()[0], SCALE_OUT),
        mocks=mocks,
        preview=True,
        deploy_options={"environ": {ENV_IMAGE_DIGESTS: to_json(released())}},
    )
    checked = [deployment.one(INSTANCE_TEMPLATE), deployment.one(INSTANCE), *deployment.of_type(FIREWALL)]
    for registration in checked:
        for name in ("cis-4.9-no-public-ip", "health-checks-from-google-only", "no-service-port"):
            assert violations(name, registration.type, registration.wire_inputs) == [], (
                name,
                registration.name,
            )
    opened = {**deployment.one(INSTANCE_TEMPLATE).wire_inputs}
    opened["networkInterfaces"] = [{**opened["networkInterfaces"][0], "accessConfigs": [{}]}]
    assert len(violations("cis-4.9-no-public-ip", INSTANCE_TEMPLATE, opened)) == 1


def test_the_group_zones_are_stable_and_a_short_region_is_refused() -> None:
    assert group_zones(REGION_ZONES) == group_zones(list(reversed(REGION_ZONES)))
    with pytest.raises(ValueError, match="spreads over 3"):
        group_zones(["europe-west1-b", "europe-west1-c"])


@pytest.mark.parametrize("stack", ["dev", "a-very-long-stack-name-for-staging-2026", "Dev"])
def test_replica_ids_fit_gcp_limits_and_differ_per_stack(stack: str) -> None:
    ids = ReplicaIds.of(stack)
    assert 6 <= len(ids.service_account) <= 30
    assert ids.service_account != GcpIds.of(stack).service_account
    assert ids != ReplicaIds.of(stack.swapcase())


def test_the_load_balancer_refuses_the_paths_the_edge_never_forwards(scaled: Deployment) -> None:
    url_map = by_name(scaled, URL_MAP, "-https")
    (host_rule,) = url_map["hostRules"]
    assert host_rule["hosts"] == ["*"]
    (matcher,) = url_map["pathMatchers"]
    assert matcher["name"] == host_rule["pathMatcher"]
    assert matcher["defaultService"] == f"{scaled.one(BACKEND).name}-id"
    refused = {
        rule["matchRules"][0]["prefixMatch"]: rule["routeAction"]["faultInjectionPolicy"]["abort"]
        for rule in matcher["routeRules"]
    }
    assert set(refused) == set(edge.PRIVATE_PATHS) == {"/metrics"}
    assert all(abort == {"httpStatus": 404, "percentage": 100.0} for abort in refused.values())
