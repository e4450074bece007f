"""Alert rules: valid for promtool, annotated, unit-tested firing and not firing, on real metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config.monitoring import (
    API_JOB,
    NODE_EXPORTER_JOB,
    PROMETHEUS_RULE_TESTS_DIR,
    PROMETHEUS_RULES_DIR,
    REPO_ROOT,
    RUNBOOK_FILE,
)
from tests.support.monitoring import exported_series_names, markdown_anchors, mlserve_metrics_in, run_promtool

EXPECTED_ALERTS = {
    "ApiDown",
    "High5xxRatio",
    "HighP99Latency",
    "TrafficButNoPredictions",
    "ModelNotReady",
    "HighInvalidInputRatio",
    "PredictionClassDrift",
    "FeatureDrift",
    "ApiReplicasBelowMinimum",
    "HostMetricsDown",
    "DataVolumeAlmostFull",
    "HostMemoryPressure",
    "ContainerRestarting",
    "BackupTooOld",
    "BackupNeverSucceeded",
}
# The scrape jobs alert rules may select: the API's and node-exporter's (host metrics).
ALERT_JOBS = (API_JOB, NODE_EXPORTER_JOB)
RULE_FILES = sorted(PROMETHEUS_RULES_DIR.glob("*.yml"))
RULE_TEST_FILES = sorted(PROMETHEUS_RULE_TESTS_DIR.glob("*.yml"))


def _alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def _alert_tests() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in RULE_TEST_FILES:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_the_expected_alerts_exist_once() -> None:
    names = [rule["alert"] for rule in _alert_rules()]
    assert sorted(names) == sorted(EXPECTED_ALERTS)


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_is_annotated_and_selects_one_job(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    assert all(rule["annotations"][key].strip() for key in ("summary", "description"))
    assert "for" in rule, "every alert waits before firing, so one bad scrape does not page"
    # Each selector names its scrape job, so a second scrape job cannot leak in.
    expr = rule["expr"]
    selectors = expr.count("{")
    assert selectors >= 1
    assert sum(expr.count(f'job="{job}"') for job in ALERT_JOBS) == selectors


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_links_its_runbook_section(rule: dict[str, Any]) -> None:
    document, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert document == RUNBOOK_FILE.relative_to(REPO_ROOT).as_posix()
    assert anchor in markdown_anchors(RUNBOOK_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_uses_only_metrics_the_api_exports(rule: dict[str, Any]) -> None:
    used = mlserve_metrics_in(rule["expr"])
    assert used <= exported_series_names(), used - exported_series_names()


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in _alert_tests():
        (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert firing == EXPECTED_ALERTS
    assert silent == EXPECTED_ALERTS


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.name)
def test_promtool_checks_the_rules(promtool: str, path: Path) -> None:
    result = run_promtool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=lambda path: path.name)
def test_promtool_rule_unit_tests_pass(promtool: str, path: Path) -> None:
    result = run_promtool(promtool, "test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """A rule test expecting ApiDown while the API is up must fail, or the suite proves nothing."""
    wrong = {
        "rule_files": [str(PROMETHEUS_RULES_DIR / "api.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": 'up{job="api",instance="api:8000"}', "values": "1x10"}],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "ApiDown",
                        "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "api"}}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "wrong_test.yml"
    path.write_text(yaml.safe_dump(wrong), encoding="utf-8")
    result = run_promtool(promtool, "test", "rules", path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
