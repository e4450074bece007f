"""The Prometheus config rendered for an API group: promtool accepts it, and it finds the replicas."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from config.monitoring import API_JOB, PROMETHEUS_RULES_DIR, prometheus_config
from config.replica_discovery import (
    MIN_REPLICAS_RECORD,
    MIN_REPLICAS_RULE_FILE,
    REPLICA_TAG,
    min_replicas_rules,
    replica_scrape_config,
)
from config.services import SERVICES
from tests.support.monitoring import run_promtool

ZONES = ("europe-west1-b", "europe-west1-c", "europe-west1-d")


def group_config(tmp_path: Path, minimum: int = 2) -> Path:
    """A stack's Prometheus folder as the host gets it: the config, the rules, and the group's minimum."""
    rules = tmp_path / "rules"
    shutil.copytree(PROMETHEUS_RULES_DIR, rules)
    (rules / MIN_REPLICAS_RULE_FILE).write_text(yaml.safe_dump(min_replicas_rules(minimum)), encoding="utf-8")
    config = prometheus_config(discovered=[replica_scrape_config(API_JOB, "my-project-1", ZONES)])
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_promtool_accepts_the_group_config_and_its_rules(promtool: str, tmp_path: Path) -> None:
    result = run_promtool(promtool, "check", "config", group_config(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    # Every rule file loads, the group's minimum among them.
    assert f"rules/{MIN_REPLICAS_RULE_FILE}" in result.stdout
    assert "1 rules found" in result.stdout


def test_one_discovery_per_zone_on_the_api_port_relabelled_to_the_api_job() -> None:
    scrape = replica_scrape_config(API_JOB, "my-project-1", ZONES)
    assert scrape["job_name"] != API_JOB  # job names are unique in a config; the label is the API's
    assert [(sd["zone"], sd["port"], sd["project"]) for sd in scrape["gce_sd_configs"]] == [
        (zone, SERVICES.api.port, "my-project-1") for zone in ZONES
    ]
    relabels = scrape["relabel_configs"]
    assert {"target_label": "job", "replacement": API_JOB} in relabels
    keep = next(rule for rule in relabels if rule.get("action") == "keep")
    assert keep["source_labels"] == ["__meta_gce_tags"]
    assert REPLICA_TAG in keep["regex"]


def test_the_zone_label_is_the_zone_name_of_the_discovered_url() -> None:
    relabels = replica_scrape_config(API_JOB, "p", ZONES)["relabel_configs"]
    (rule,) = (r for r in relabels if r.get("target_label") == "zone")
    # Prometheus anchors relabel regexes at both ends and writes $1 by default.
    match = re.fullmatch(
        rule["regex"], "https://www.googleapis.com/compute/v1/projects/p/zones/europe-west1-b"
    )
    assert match is not None
    assert match.group(1) == "europe-west1-b"


def test_the_minimum_is_recorded_as_a_number_and_must_be_positive() -> None:
    (group,) = min_replicas_rules(3)["groups"]
    assert group["rules"] == [{"record": MIN_REPLICAS_RECORD, "expr": "vector(3)"}]
    with pytest.raises(ValueError, match="at least one replica"):
        min_replicas_rules(0)
    with pytest.raises(ValueError, match="at least one zone"):
        replica_scrape_config(API_JOB, "p", ())
