"""Alertmanager and node-exporter in the compose file: flags both the official images and Debian's
binaries take, the data disk visible to node-exporter, Alertmanager's config a secret."""

from __future__ import annotations

import re

from config import alertmanager, monitoring
from config import stack_layout as layout
from config.services import SERVICES
from stacks.compose import compose_document
from stacks.host_storage import DOCKER_DATA_ROOT


def _flags(service: str) -> dict[str, str]:
    command = compose_document()["services"][service]["command"]
    return dict(flag.removeprefix("--").split("=", 1) for flag in command)


def test_node_exporter_sees_the_data_disk_but_not_dockers_own_mounts() -> None:
    flags = _flags(SERVICES.node_exporter.name)
    exclude = re.compile(flags["collector.filesystem.mount-points-exclude"])
    assert not exclude.match(layout.DATA_DISK_MOUNT_POINT)
    assert not exclude.match("/")
    assert exclude.match(f"{DOCKER_DATA_ROOT}/overlay2/abc/merged")
    assert exclude.match("/proc")
    root = flags["path.rootfs"]
    assert flags["collector.textfile.directory"] == f"{root}{layout.NODE_EXPORTER_TEXTFILE_DIR}"
    node = compose_document()["services"][SERVICES.node_exporter.name]
    assert node["volumes"] == [f"/:{root}:ro"]
    assert node["pid"] == "host"


def test_the_data_volume_relabel_rule_matches_the_data_disk_only() -> None:
    (node_job,) = (
        job
        for job in monitoring.prometheus_config()["scrape_configs"]
        if job["job_name"] == monitoring.NODE_EXPORTER_JOB
    )
    (rule,) = node_job["metric_relabel_configs"]
    regex = re.compile(f"^(?:{rule['regex']})$")
    assert regex.match(f"node_filesystem_avail_bytes;{layout.DATA_DISK_MOUNT_POINT}")
    assert not regex.match("node_filesystem_avail_bytes;/")
    assert not regex.match(f"node_network_up;{layout.DATA_DISK_MOUNT_POINT}")
    assert (rule["target_label"], rule["replacement"]) == monitoring.DATA_VOLUME_LABEL


def test_alertmanager_reads_its_config_from_a_compose_secret() -> None:
    document = compose_document()
    service = document["services"][SERVICES.alertmanager.name]
    flags = _flags(SERVICES.alertmanager.name)
    assert flags["config.file"] == alertmanager.ALERTMANAGER_CONTAINER_CONFIG_FILE
    assert service["secrets"] == [alertmanager.ALERTMANAGER_CONFIG_SECRET]
    secret_file = document["secrets"][alertmanager.ALERTMANAGER_CONFIG_SECRET]["file"]
    assert secret_file == f"./{layout.SECRETS_DIR}/{alertmanager.ALERTMANAGER_CONFIG_SECRET}"
    # One instance: clustering off, with the flag both 0.25 and 0.27 know.
    assert flags["cluster.listen-address"] == ""
