"""The outside watch under mocks: the uptime check on the public URL, its alert policy, the channels
from the stack config, and the firewall rule that lets Google's checkers in when publicSourceRanges
would not. Only the GCP API and the Pulumi engine are mocked (stacks/uptime.py cannot reach GCP here).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import pytest

from config import edge
from config import uptime_check as facts
from config.alert_receivers import SECRET_RECEIVER_KEYS
from config.services import SERVICES
from policy.cis_gcp import RULES
from stacks.image_digests import ENV_IMAGE_DIGESTS, to_json
from stacks.uptime import NO_CHECKER_ADDRESSES, NOBODY_PAGED, check_filter
from tests.support.policy_harness import SECRET_SIGNATURE, unwrap_secrets, violations
from tests.support.pulumi_harness import (
    ALERT_POLICY,
    FAKE_IP,
    FAKE_LB_IP,
    FIREWALL,
    GET_UPTIME_CHECK_IPS,
    GET_ZONES,
    NOTIFICATION_CHANNEL,
    REPO_ROOT,
    SERVICE,
    UPTIME_CHECK,
    Deployment,
    RecordingMocks,
    engine_config,
    run_program,
    stack_files,
)
from tests.unit.stacks.test_image_digests import released

WEBHOOK = "https://hooks.example.com/gcp/very-secret-token"
EMAIL = {
    "mlops-platform:alertEmailTo": "oncall@example.com",
    "mlops-platform:alertEmailFrom": "alerts@example.com",
    "mlops-platform:alertSmtpSmarthost": "smtp.example.com:587",
}
RESTRICTED = {"mlops-platform:publicSourceRanges": ["198.51.100.0/24"]}
# What Monitoring's uptimeCheckIps.list answers: addresses (one IPv6, one listed twice) per location.
CHECKER_IPS = ["35.238.118.48", "2600:1900:4000::1", "34.77.186.19", "35.186.144.97", "34.77.186.19"]


def checker_answer(_args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "uptime-check-ips",
        "uptimeCheckIps": [{"ipAddress": ip, "location": "somewhere", "region": "USA"} for ip in CHECKER_IPS],
    }


def deploy(
    overrides: dict[str, Any] | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    scale_out: bool = False,
) -> Deployment:
    """Run the program on the dev stack file with `overrides`; alert URLs set as Pulumi secrets."""
    overrides = overrides or {}
    if monkeypatch is not None:
        secret = [key for key in overrides if key.rpartition(":")[2] in SECRET_RECEIVER_KEYS]
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret))
    mocks = RecordingMocks(
        {GET_UPTIME_CHECK_IPS: checker_answer, GET_ZONES: lambda _args: {"names": ["europe-west1-b"] * 3}}
    )
    options = {"environ": {ENV_IMAGE_DIGESTS: to_json(released())}} if scale_out else None
    return run_program(engine_config(stack_files()[0], overrides), mocks=mocks, deploy_options=options)


@pytest.fixture(scope="module")
def plain() -> Deployment:
    return deploy()


def test_the_check_probes_the_ready_route_through_the_edge_on_the_vm_address(plain: Deployment) -> None:
    check = plain.one(UPTIME_CHECK).inputs
    assert check["monitoredResource"] == {
        "type": "uptime_url",
        "labels": {"project_id": check["project"], "host": FAKE_IP},
    }
    http = check["httpCheck"]
    assert (http["port"], http["path"], http["useSsl"]) == (edge.PUBLIC_HTTPS_PORT, "/ready", True)
    assert http["path"] == SERVICES.api.health_path
    # The self-signed certificate (no domain) would fail every probe.
    assert http["validateSsl"] is False
    assert check["period"] == "60s"
    assert check["timeout"] == f"{facts.TIMEOUT_SECONDS}s"
    assert len(check["selectedRegions"]) >= 3
    assert check["contentMatchers"] == [{"content": facts.CONTENT, "matcher": "CONTAINS_STRING"}]


def test_the_content_matcher_matches_the_ready_body_and_not_the_not_ready_one() -> None:
    # The bodies as the API writes them (orjson): app/serving/routes.py's ready route.
    ready = orjson.dumps({"status": "ready", "model": {"version": "3"}}).decode()
    not_ready = orjson.dumps({"error": {"status": 503, "reason": "not_ready"}}).decode()
    assert facts.CONTENT in ready
    assert facts.CONTENT not in not_ready


def test_with_a_domain_the_check_names_it_and_validates_its_certificate() -> None:
    check = deploy({"mlops-platform:domain": "api.example.com"}).one(UPTIME_CHECK).inputs
    assert check["monitoredResource"]["labels"]["host"] == "api.example.com"
    assert check["httpCheck"]["validateSsl"] is True


def test_the_policy_watches_this_check_and_links_the_runbook(plain: Deployment) -> None:
    check = plain.one(UPTIME_CHECK)
    policy = plain.one(ALERT_POLICY)
    (condition,) = policy.inputs["conditions"]
    threshold = condition["conditionThreshold"]
    assert threshold["filter"] == check_filter(f"{check.name}-check-id")
    assert check.urn in policy.dependencies
    assert threshold["comparison"] == "COMPARISON_GT"
    assert threshold["thresholdValue"] == facts.FAILING_LOCATIONS
    assert threshold["aggregations"][0]["crossSeriesReducer"] == "REDUCE_COUNT_FALSE"
    documentation = policy.inputs["documentation"]
    assert documentation["mimeType"] == "text/markdown"
    assert f"docs/RUNBOOK.md#{facts.RUNBOOK_ANCHOR}" in documentation["content"]
    assert FAKE_IP in documentation["content"]


def test_the_runbook_has_the_section_the_policy_links() -> None:
    runbook = (REPO_ROOT / "docs" / "RUNBOOK.md").read_text()
    # GitHub's anchor of "## VM unreachable (uptime check)".
    assert "\n## VM unreachable (uptime check)\n" in runbook
    assert facts.RUNBOOK_ANCHOR == "vm-unreachable-uptime-check"


def test_without_receivers_the_check_and_policy_exist_and_up_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        deployment = deploy()
    assert deployment.of_type(NOTIFICATION_CHANNEL) == []
    assert deployment.one(ALERT_POLICY).inputs.get("notificationChannels", []) == []
    assert NOBODY_PAGED in caplog.messages


def test_email_and_webhook_channels_page_from_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy({**EMAIL, "mlops-platform:alertWebhookUrl": WEBHOOK}, monkeypatch)
    channels = {r.inputs["type"]: r for r in deployment.of_type(NOTIFICATION_CHANNEL)}
    assert set(channels) == {"email", "webhook_tokenauth"}
    assert channels["email"].inputs["labels"] == {"email_address": "oncall@example.com"}
    assert unwrap_secrets(channels["webhook_tokenauth"].inputs["labels"]) == {"url": WEBHOOK}
    policy = deployment.one(ALERT_POLICY)
    assert sorted(policy.inputs["notificationChannels"]) == sorted(
        f"projects/test-project-123/notificationChannels/{r.name}" for r in channels.values()
    )


def test_email_alone_makes_one_channel_and_no_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        deployment = deploy(EMAIL, monkeypatch)
    assert [r.inputs["type"] for r in deployment.of_type(NOTIFICATION_CHANNEL)] == ["email"]
    assert NOBODY_PAGED not in caplog.messages


def test_the_webhook_url_is_secret_in_the_inputs_and_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy({"mlops-platform:alertWebhookUrl": WEBHOOK}, monkeypatch)
    channel = deployment.one(NOTIFICATION_CHANNEL)
    # As the engine received it: the URL wrapped as a secret, never a plain string.
    url = channel.wire_inputs["labels"]["url"]
    assert isinstance(url, dict)
    assert SECRET_SIGNATURE in url
    assert url["value"] == WEBHOOK
    # The provider's `labels` output (the state) is encrypted too.
    assert "labels" in channel.additional_secret_outputs


def test_open_public_ranges_need_no_checker_rule(plain: Deployment) -> None:
    assert not any(r.name.endswith("allow-uptime-checkers") for r in plain.of_type(FIREWALL))
    assert not any(token == GET_UPTIME_CHECK_IPS for token, _ in plain.calls)


def test_restricted_public_ranges_admit_exactly_the_ipv4_checkers_to_https() -> None:
    deployment = deploy(RESTRICTED)
    (rule,) = [r.inputs for r in deployment.of_type(FIREWALL) if r.name.endswith("allow-uptime-checkers")]
    assert rule["sourceRanges"] == ["34.77.186.19/32", "35.186.144.97/32", "35.238.118.48/32"]
    assert rule["allows"] == [{"protocol": "tcp", "ports": [str(edge.PUBLIC_HTTPS_PORT)]}]
    assert rule["targetTags"] == ["mlops-vm"]
    (edge_rule,) = [r.inputs for r in deployment.of_type(FIREWALL) if r.name.endswith("allow-edge")]
    assert edge_rule["sourceRanges"] == ["198.51.100.0/24"]


def test_no_checker_address_means_no_rule_rather_than_one_open_to_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mocks = RecordingMocks({GET_UPTIME_CHECK_IPS: lambda _args: {"id": "x", "uptimeCheckIps": []}})
    with caplog.at_level(logging.WARNING):
        deployment = run_program(engine_config(stack_files()[0], RESTRICTED), mocks=mocks)
    assert not any(r.name.endswith("allow-uptime-checkers") for r in deployment.of_type(FIREWALL))
    assert NO_CHECKER_ADDRESSES in caplog.messages


def test_scaled_out_both_the_vm_edge_and_the_load_balancer_are_watched() -> None:
    deployment = deploy({**RESTRICTED, "mlops-platform:apiReplicas": 3}, scale_out=True)
    checks = {r.name: r for r in deployment.of_type(UPTIME_CHECK)}
    hosts = {name: r.inputs["monitoredResource"]["labels"]["host"] for name, r in checks.items()}
    # The VM's check keeps its name (no replacement when the API scales out).
    assert hosts == {"mlops-dev-uptime": FAKE_IP, "mlops-dev-uptime-lb": FAKE_LB_IP}
    filters = [c["conditionThreshold"]["filter"] for c in deployment.one(ALERT_POLICY).inputs["conditions"]]
    assert sorted(filters) == sorted(check_filter(f"{name}-check-id") for name in checks)
    assert deployment.one(ALERT_POLICY).inputs["combiner"] == "OR"
    # The management VM's edge still answers the checkers through the restricted firewall.
    assert any(r.name.endswith("allow-uptime-checkers") for r in deployment.of_type(FIREWALL))


def test_scaled_out_with_a_domain_only_the_load_balancer_check_validates_it() -> None:
    overrides = {"mlops-platform:apiReplicas": 3, "mlops-platform:domain": "api.example.com"}
    deployment = deploy(overrides, scale_out=True)
    checks = {r.name: r.inputs for r in deployment.of_type(UPTIME_CHECK)}
    assert checks["mlops-dev-uptime-lb"]["monitoredResource"]["labels"]["host"] == "api.example.com"
    assert checks["mlops-dev-uptime-lb"]["httpCheck"]["validateSsl"] is True
    # The domain points at the load balancer: the VM's edge keeps its self-signed certificate.
    assert checks["mlops-dev-uptime"]["monitoredResource"]["labels"]["host"] == FAKE_IP
    assert checks["mlops-dev-uptime"]["httpCheck"]["validateSsl"] is False


def test_the_watch_and_the_checker_rule_pass_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy({**RESTRICTED, **EMAIL, "mlops-platform:alertWebhookUrl": WEBHOOK}, monkeypatch)
    for registration in deployment.registrations:
        for name in RULES:
            assert violations(name, registration.type, registration.wire_inputs) == [], (
                name,
                registration.name,
            )


def test_every_monitoring_resource_waits_for_the_monitoring_api(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy({**EMAIL, "mlops-platform:alertWebhookUrl": WEBHOOK}, monkeypatch)
    (monitoring_api,) = [
        r.urn for r in deployment.of_type(SERVICE) if r.inputs["service"] == "monitoring.googleapis.com"
    ]
    watch = [*deployment.of_type(UPTIME_CHECK), *deployment.of_type(ALERT_POLICY)]
    for registration in [*watch, *deployment.of_type(NOTIFICATION_CHANNEL)]:
        assert monitoring_api in registration.dependencies, registration.name
