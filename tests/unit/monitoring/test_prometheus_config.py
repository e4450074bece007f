"""The generated Prometheus config: derived from config/ and accepted by promtool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import monitoring
from config.services import SERVICES
from tests.support.monitoring import run_promtool


def test_scrape_targets_come_from_the_service_catalog() -> None:
    config = yaml.safe_load(monitoring.PROMETHEUS_CONFIG_FILE.read_text(encoding="utf-8"))
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "api": [f"api:{SERVICES.api.port}"],
        "prometheus": [f"prometheus:{SERVICES.prometheus.port}"],
        "node-exporter": [f"node-exporter:{SERVICES.node_exporter.port}"],
        "alertmanager": [f"alertmanager:{SERVICES.alertmanager.port}"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"alertmanager:{SERVICES.alertmanager.port}"
    ]
    assert SERVICES.api.port == 8000
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]


def test_job_names_follow_a_renamed_service(monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = SERVICES.model_copy(update={"api": SERVICES.api.model_copy(update={"port": 8081})})
    monkeypatch.setattr(monitoring, "SERVICES", renamed)
    config = monitoring.prometheus_config()
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "api")
    assert api_job["static_configs"][0]["targets"] == ["api:8081"]


def test_overrides_for_tests_keep_the_jobs() -> None:
    config = monitoring.prometheus_config(
        {"api": ["127.0.0.1:1234"], "prometheus": ["127.0.0.1:9999"]},
        scrape_interval="1s",
        rule_files=["/abs/rules/*.yml"],
    )
    assert config["global"]["scrape_interval"] == "1s"
    assert config["rule_files"] == ["/abs/rules/*.yml"]
    assert [job["job_name"] for job in config["scrape_configs"]] == ["api", "prometheus"]
    with pytest.raises(ValueError, match="api"):
        monitoring.prometheus_config({"prometheus": ["127.0.0.1:9999"]})


def test_promtool_accepts_the_config_and_finds_the_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", monitoring.PROMETHEUS_CONFIG_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = sorted(monitoring.PROMETHEUS_RULES_DIR.glob("*.yml"))
    assert len(rule_files) >= 2
    assert f"SUCCESS: {len(rule_files)} rule files found" in result.stdout


def test_promtool_rejects_a_broken_config(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: a config with an invalid interval is refused."""
    broken = monitoring.prometheus_config(scrape_interval="fifteen seconds", rule_files=[])
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run_promtool(promtool, "check", "config", path)
    assert result.returncode != 0
