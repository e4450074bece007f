"""Monitoring settings and the files derived from them: Prometheus config, Grafana provisioning.

Scrape targets and the Grafana datasource URL come from `config.services.SERVICES`, so they cannot
disagree with the compose file or the firewall. `make generate` (stacks/generate.py) writes them; they
are committed (the containers mount them) and `make generate CHECK=1` fails when one is stale.

Alert rules are hand-written YAML in `config/prometheus/rules/` and unit-tested with `promtool test rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config.services import SERVICES
from config.stack_layout import DATA_DISK_MOUNT_POINT, GRAFANA_ADMIN_SECRET

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO_ROOT / "config" / "prometheus"
PROMETHEUS_CONFIG_FILE = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_RULES_DIR = PROMETHEUS_DIR / "rules"
PROMETHEUS_RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
GRAFANA_DIR = REPO_ROOT / "config" / "grafana"
GRAFANA_PROVISIONING_DIR = GRAFANA_DIR / "provisioning"
GRAFANA_DATASOURCE_FILE = GRAFANA_PROVISIONING_DIR / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARD_PROVIDER_FILE = GRAFANA_PROVISIONING_DIR / "dashboards" / "provider.yml"
GRAFANA_INI_FILE = GRAFANA_DIR / "grafana.ini"
DASHBOARDS_JSON_DIR = REPO_ROOT / "dashboards" / "json"
# What to look at and what to do for each alert: every rule's `runbook_url` annotation is this file's
# path in the repository plus the anchor of the alert's section.
RUNBOOK_FILE = REPO_ROOT / "docs" / "RUNBOOK.md"

# The job label of each scrape target is the service name: rules and dashboards select `job="api"`.
API_JOB = SERVICES.api.name
PROMETHEUS_JOB = SERVICES.prometheus.name
# node-exporter's job (its service name): the host alerts in rules/host.yml select it.
NODE_EXPORTER_JOB = SERVICES.node_exporter.name
ALERTMANAGER_JOB = SERVICES.alertmanager.name
# node-exporter labels the data volume's filesystem series `volume="data"` (a metric relabel rule on
# its job), so the disk alert does not depend on where the docker role mounts the data disk.
DATA_VOLUME_LABEL = ("volume", "data")
# The API is scraped every 15 s; rules evaluate at the same pace.
SCRAPE_INTERVAL = "15s"
EVALUATION_INTERVAL = "15s"
# Relative to prometheus.yml (Prometheus resolves rule_files against the config file's folder),
# so the same file works from the repo (promtool) and mounted in the container.
RULE_FILES_GLOB = "rules/*.yml"

# Grafana references its datasource by this uid everywhere: provisioning and every dashboard panel.
GRAFANA_DATASOURCE_UID = "prometheus"
GRAFANA_DATASOURCE_NAME = "Prometheus"
GRAFANA_DASHBOARD_FOLDER = "mlops-platform"

# Paths inside the containers (the compose file mounts the repo folders there).
PROMETHEUS_CONTAINER_CONFIG_DIR = "/etc/prometheus"
GRAFANA_CONTAINER_PROVISIONING_DIR = "/etc/grafana/provisioning"
GRAFANA_CONTAINER_INI_FILE = "/etc/grafana/grafana.ini"
GRAFANA_CONTAINER_DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
# The admin password never appears in a file of the repo: compose mounts a secret file here and
# Grafana reads it through GF_SECURITY_ADMIN_PASSWORD__FILE (the `__FILE` suffix reads a file).
GRAFANA_ADMIN_PASSWORD_SECRET_FILE = f"/run/secrets/{GRAFANA_ADMIN_SECRET}"
GRAFANA_ENVIRONMENT: Mapping[str, str] = {
    "GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_ADMIN_PASSWORD_SECRET_FILE,
    "GF_PATHS_CONFIG": GRAFANA_CONTAINER_INI_FILE,
    "GF_PATHS_PROVISIONING": GRAFANA_CONTAINER_PROVISIONING_DIR,
}


def service_address(name: str) -> str:
    """`host:port` of a service on the stack network (its compose DNS name and port)."""
    service = SERVICES.by_name(name)
    return f"{service.name}:{service.port}"


def default_scrape_targets() -> dict[str, list[str]]:
    """Job name -> targets: the API, Prometheus itself, node-exporter and Alertmanager, by service name."""
    jobs = (API_JOB, PROMETHEUS_JOB, NODE_EXPORTER_JOB, ALERTMANAGER_JOB)
    return {job: [service_address(job)] for job in jobs}


def _data_volume_relabeling(mount_point: str) -> list[dict[str, Any]]:
    """Adds `volume="data"` to node-exporter's filesystem series of the data disk's mount point."""
    name, value = DATA_VOLUME_LABEL
    return [
        {
            "source_labels": ["__name__", "mountpoint"],
            "regex": f"node_filesystem_.+;{mount_point}",
            "target_label": name,
            "replacement": value,
        }
    ]


def _scrape_config(job: str, targets: Sequence[str], data_mount_point: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "job_name": job,
        "metrics_path": "/metrics",
        "static_configs": [{"targets": list(targets)}],
    }
    if job == NODE_EXPORTER_JOB:
        config["metric_relabel_configs"] = _data_volume_relabeling(data_mount_point)
    return config


def prometheus_config(
    targets: Mapping[str, Sequence[str]] | None = None,
    *,
    scrape_interval: str = SCRAPE_INTERVAL,
    evaluation_interval: str = EVALUATION_INTERVAL,
    rule_files: Sequence[str] = (RULE_FILES_GLOB,),
    discovered: Sequence[Mapping[str, Any]] = (),
    alertmanagers: Sequence[str] = (service_address(ALERTMANAGER_JOB),),
    data_mount_point: str = DATA_DISK_MOUNT_POINT,
) -> dict[str, Any]:
    """The Prometheus configuration as a dict. Tests override targets and intervals; `discovered`
    adds scrape jobs whose targets are found at run time (the API group's replicas); alerts go to
    `alertmanagers` (none: alerts are only evaluated)."""
    jobs = default_scrape_targets() if targets is None else targets
    missing = {API_JOB, PROMETHEUS_JOB} - set(jobs)
    if missing:
        raise ValueError(f"scrape targets must include the jobs {sorted(missing)}")
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "external_labels": {"monitor": "mlops-platform"},
        },
        "rule_files": list(rule_files),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]},
        "scrape_configs": [
            _scrape_config(job, job_targets, data_mount_point) for job, job_targets in jobs.items()
        ]
        + [dict(job) for job in discovered],
    }


def grafana_datasources() -> dict[str, Any]:
    """Grafana datasource provisioning: Prometheus by fixed uid, URL from the service catalog."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": GRAFANA_DATASOURCE_NAME,
                "type": "prometheus",
                "uid": GRAFANA_DATASOURCE_UID,
                "access": "proxy",
                "url": f"http://{service_address(PROMETHEUS_JOB)}",
                "isDefault": True,
                "editable": False,
                # Tells Grafana the scrape interval so $__rate_interval covers at least 4 scrapes.
                "jsonData": {"timeInterval": SCRAPE_INTERVAL, "httpMethod": "POST"},
            }
        ],
    }


def grafana_dashboard_provider() -> dict[str, Any]:
    """Grafana dashboard provider: the generated JSON folder, mounted read-only in the container."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": GRAFANA_DASHBOARD_FOLDER,
                "orgId": 1,
                "folder": GRAFANA_DASHBOARD_FOLDER,
                "type": "file",
                "disableDeletion": True,
                # Dashboards are code: edits in the UI would be lost on the next provisioning run.
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": GRAFANA_CONTAINER_DASHBOARDS_DIR, "foldersFromFilesStructure": False},
            }
        ],
    }
