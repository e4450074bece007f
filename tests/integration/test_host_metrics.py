"""The host's textfile metrics, read by a real node-exporter: restart counts from real Docker
containers (deploy/monitoring/container_restarts.py) and the backup job's last success
(deploy/backup/mlops_backup.py), under the names the host alerts select."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from config import monitoring
from config import stack_layout as layout
from tests.support import testhost
from tests.support.processes import clean_env, free_port, start_process, wait_for_http
from tests.support.script_module import load_script

restarts = load_script("deploy/monitoring/container_restarts.py")
backup = load_script("deploy/backup/mlops_backup.py")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROJECT = f"mlops-metrics-test-{os.getpid()}"


def _labels(service: str, oneoff: bool = False) -> list[str]:
    return [
        "--label", f"com.docker.compose.project={PROJECT}",
        "--label", f"com.docker.compose.service={service}",
        "--label", f"com.docker.compose.oneoff={oneoff}",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def containers() -> Iterator[None]:
    """`crashing` exits at once and Docker restarts it (on-failure, at most 3 times); `steady`
    keeps running; a one-off (`docker compose run`) crashes too but is not a service."""
    testhost.build_base_images()
    image = testhost.TRIXIE_BASE
    crash = ["--restart", "on-failure:3", image, "sh", "-c", "exit 1"]
    testhost.docker("run", "-d", "--name", f"{PROJECT}-crashing", *_labels("crashing"), *crash)
    testhost.docker("run", "-d", "--name", f"{PROJECT}-oneoff", *_labels("trainer", oneoff=True), *crash)
    testhost.docker("run", "-d", "--name", f"{PROJECT}-steady", *_labels("steady"), image, "sleep", "600")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            count = testhost.docker("inspect", "--format", "{{.RestartCount}}", f"{PROJECT}-crashing")
            if int(count) >= 3:
                break
            time.sleep(0.5)
        yield
    finally:
        for name in ("crashing", "oneoff", "steady"):
            testhost.docker("rm", "-f", f"{PROJECT}-{name}", check=False)


def _backup_config(textfile_dir: Path) -> Any:
    return backup.BackupConfig(
        target="/nonexistent", stack_dir="/nonexistent", compose=["docker", "compose"],
        mlflow_service="mlflow", mlflow_uid=10001, db="/db", artifacts="/artifacts",
        staging_dir="/nonexistent", store_script="/nonexistent", archive_prefix="b-",
        archive_suffix=".tar.gz", textfile_dir=str(textfile_dir), metric_file=layout.BACKUP_METRIC_FILE,
    )  # fmt: skip


def _scrape(textfile_dir: Path, tmp_path: Path) -> str:
    port = free_port()
    args = [
        NODE_EXPORTER,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--collector.textfile.directory={textfile_dir}",
    ]
    server = start_process(args, clean_env({}), tmp_path / "node-exporter.log", f"http://127.0.0.1:{port}")
    try:
        wait_for_http(f"{server.base_url}/metrics", timeout=30, process=server.process)
        return requests.get(f"{server.base_url}/metrics", timeout=10).text
    finally:
        server.stop()


def _value(metrics: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{series} not exported:\n" + "\n".join(
        line for line in metrics.splitlines() if "mlops_" in line
    )
    return float(match.group(1))


def test_node_exporter_exports_restart_counts_and_the_last_backup(containers: None, tmp_path: Path) -> None:
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    output = textfile_dir / layout.CONTAINER_RESTARTS_METRIC_FILE
    assert restarts.main(["--project", PROJECT, "--output", str(output)]) == 0
    finished = time.time()
    backup.write_success_metric(_backup_config(textfile_dir), finished)
    assert sorted(p.name for p in textfile_dir.iterdir()) == sorted(
        [layout.CONTAINER_RESTARTS_METRIC_FILE, layout.BACKUP_METRIC_FILE]
    )  # no temporary file left behind

    metrics = _scrape(textfile_dir, tmp_path)
    # A textfile that node-exporter cannot parse sets this to 1.
    assert _value(metrics, "node_textfile_scrape_error") == 0
    assert _value(metrics, 'mlops_container_restarts_total{container="crashing"}') == 3
    assert _value(metrics, 'mlops_container_restarts_total{container="steady"}') == 0
    assert 'container="trainer"' not in metrics  # one-off containers are not services
    assert _value(metrics, "mlops_backup_last_success_timestamp_seconds") == pytest.approx(finished, abs=1)


def test_the_host_alerts_select_these_metric_names() -> None:
    rules = (monitoring.PROMETHEUS_RULES_DIR / "host.yml").read_text(encoding="utf-8")
    assert restarts.METRIC in rules
    assert backup.SUCCESS_METRIC in rules


def test_no_project_containers_write_an_empty_but_valid_file(tmp_path: Path) -> None:
    output = tmp_path / layout.CONTAINER_RESTARTS_METRIC_FILE
    assert restarts.main(["--project", f"{PROJECT}-none", "--output", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert "container=" not in text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
