"""Grafana provisioning files: valid YAML, consistent with the dashboards and the service catalog."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import yaml

from config import monitoring
from config.services import SERVICES
from dashboards.queries import load_dashboards


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_datasource_has_the_fixed_uid_and_the_prometheus_service_url() -> None:
    data = _yaml(monitoring.GRAFANA_DATASOURCE_FILE)
    (datasource,) = data["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == monitoring.GRAFANA_DATASOURCE_UID
    assert datasource["url"] == f"http://{SERVICES.prometheus.name}:{SERVICES.prometheus.port}"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["jsonData"]["timeInterval"] == monitoring.SCRAPE_INTERVAL
    assert datasource["editable"] is False


def test_every_dashboard_references_the_provisioned_datasource_uid() -> None:
    data = _yaml(monitoring.GRAFANA_DATASOURCE_FILE)
    (datasource,) = data["datasources"]
    for dashboard in load_dashboards():
        uids = {
            target["datasource"]["uid"]
            for panel in dashboard["panels"]
            for target in panel.get("targets", [])
        }
        assert uids == {datasource["uid"]}, dashboard["uid"]


def test_dashboard_provider_points_at_the_mounted_json_folder() -> None:
    data = _yaml(monitoring.GRAFANA_DASHBOARD_PROVIDER_FILE)
    (provider,) = data["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == monitoring.GRAFANA_CONTAINER_DASHBOARDS_DIR
    assert provider["allowUiUpdates"] is False


def test_grafana_ini_turns_off_anonymous_access_and_sign_up_and_holds_no_password() -> None:
    text = monitoring.GRAFANA_INI_FILE.read_text(encoding="utf-8")
    ini = configparser.ConfigParser(comment_prefixes=(";", "#"))
    ini.read_string(text)
    assert ini.getboolean("auth.anonymous", "enabled") is False
    assert ini.getboolean("users", "allow_sign_up") is False
    assert not ini.has_option("security", "admin_password")
    assert ini.get("paths", "provisioning") == monitoring.GRAFANA_CONTAINER_PROVISIONING_DIR
    home = ini.get("dashboards", "default_home_dashboard_path")
    assert home.startswith(monitoring.GRAFANA_CONTAINER_DASHBOARDS_DIR + "/")
    assert (monitoring.DASHBOARDS_JSON_DIR / home.rsplit("/", 1)[1]).exists()
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" in text


def test_admin_password_comes_from_a_secret_file() -> None:
    env = monitoring.GRAFANA_ENVIRONMENT
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    assert not any(key == "GF_SECURITY_ADMIN_PASSWORD" for key in env)
    assert env["GF_PATHS_PROVISIONING"] == monitoring.GRAFANA_CONTAINER_PROVISIONING_DIR
