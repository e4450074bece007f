"""Alertmanager's config: valid for the real `amtool`, routed by severity, and its secrets only at deploy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from config import alertmanager
from config.alert_receivers import AlertReceiverSettings

WEBHOOK = "http://10.0.0.1:8080/hook/very-secret-webhook"
SLACK = "https://hooks.slack.com/services/T0/B0/very-secret-slack"
SMTP_PASSWORD = "very-secret-smtp-password"
ALL_RECEIVERS = AlertReceiverSettings.model_validate(
    {
        "alertWebhookUrl": WEBHOOK,
        "alertSlackWebhookUrl": SLACK,
        "alertEmailTo": "oncall@example.com",
        "alertEmailFrom": "alerts@example.com",
        "alertSmtpSmarthost": "smtp.example.com:587",
        "alertSmtpUsername": "alerts",
        "alertSmtpPassword": SMTP_PASSWORD,
    }
)
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, check=False, timeout=60)


def written(tmp_path: Path, settings: AlertReceiverSettings | None) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager.rendered_config(settings), encoding="utf-8")
    return path


@pytest.mark.parametrize("settings", [None, ALL_RECEIVERS], ids=["no-receiver", "every-receiver"])
def test_amtool_accepts_the_rendered_config(tmp_path: Path, settings: AlertReceiverSettings | None) -> None:
    result = amtool("check-config", str(written(tmp_path, settings)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout


def test_amtool_accepts_the_committed_receiver_less_config() -> None:
    result = amtool("check-config", str(alertmanager.ALERTMANAGER_EXAMPLE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    committed = yaml.safe_load(alertmanager.ALERTMANAGER_EXAMPLE_FILE.read_text(encoding="utf-8"))
    assert committed == alertmanager.example_config()


@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_every_severity_pages_every_configured_receiver(tmp_path: Path, severity: str) -> None:
    path = written(tmp_path, ALL_RECEIVERS)
    result = amtool(
        "config", "routes", "test", f"--config.file={path}", "alertname=ApiDown", f"severity={severity}"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [alertmanager.PAGE_RECEIVER]
    page = next(
        r for r in alertmanager.alertmanager_config(ALL_RECEIVERS)["receivers"] if r["name"] == "page"
    )
    assert page["webhook_configs"][0]["url"] == WEBHOOK
    assert page["slack_configs"][0]["api_url"] == SLACK
    assert page["email_configs"][0]["auth_password"] == SMTP_PASSWORD
    assert all(
        config["send_resolved"] for key, configs in page.items() if key != "name" for config in configs
    )


def test_without_receivers_alerts_go_to_the_null_receiver(tmp_path: Path) -> None:
    path = written(tmp_path, None)
    result = amtool(
        "config", "routes", "test", f"--config.file={path}", "alertname=ApiDown", "severity=critical"
    )
    assert result.stdout.split() == [alertmanager.NULL_RECEIVER]


def test_critical_repeats_sooner_than_warning_and_groups_by_rule_and_job() -> None:
    route = alertmanager.alertmanager_config(ALL_RECEIVERS)["route"]
    repeats = {child["matchers"][0]: child["repeat_interval"] for child in route["routes"]}
    assert repeats == {'severity="critical"': "1h", 'severity="warning"': "12h"}
    assert route["group_by"] == ["alertname", "job"]


def test_api_down_inhibits_the_api_traffic_and_latency_alerts() -> None:
    (rule,) = alertmanager.alertmanager_config()["inhibit_rules"]
    assert rule["source_matchers"] == ['alertname="ApiDown"']
    targets = rule["target_matchers"][0].removeprefix('alertname=~"').removesuffix('"').split("|")
    assert {"HighP99Latency", "TrafficButNoPredictions", "HighInvalidInputRatio", "High5xxRatio"} <= set(
        targets
    )
    assert "ApiDown" not in targets


def test_the_config_is_one_line_for_the_playbook_prompt_and_timings_are_settable() -> None:
    timing = alertmanager.AlertTiming(group_wait="1s", group_interval="2s")
    rendered = alertmanager.rendered_config(ALL_RECEIVERS, timing)
    assert "\n" not in rendered
    route = yaml.safe_load(rendered)["route"]
    assert (route["group_wait"], route["group_interval"]) == ("1s", "2s")


def test_no_secret_in_the_committed_config_or_the_settings_repr() -> None:
    text = alertmanager.ALERTMANAGER_EXAMPLE_FILE.read_text(encoding="utf-8")
    for secret in ("very-secret", "api_url", "auth_password", "url:"):
        assert secret not in text
    assert "very-secret" not in repr(ALL_RECEIVERS)
