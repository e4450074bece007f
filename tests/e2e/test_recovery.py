"""End to end: the data disk, backups you can restore, and a replaced VM that keeps its registry.

Runs after test_provisioning.py on the same session host (fixture `provisioned`), which was
provisioned with a data disk (a loop device playing the VM's persistent disk, formatted by the
docker role on the first run) and a backup target (a folder on the host standing in for a bucket).
Tests run in file order: the backup and restore, the replacement of the host, then registry
delivery: the own images pushed to a local registry and the host provisioned with them by digest.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from config import edge
from config import stack_layout as layout
from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME
from config.services import API_IMAGE, EDGE_IMAGE, MLFLOW_IMAGE, SERVICES, TRAINER_IMAGE
from stacks.host_storage import DOCKER_DATA_ROOT
from stacks.image_digests import compose_variables, to_json
from stacks.images import OWN_IMAGES, released_repository
from tests.support import testhost
from tests.support.prometheus_query import wait_for_series
from tests.support.provisioned import (
    BACKUP_DIR,
    MLFLOW_PASSWORD,
    ProvisionedHost,
    ProvisionRun,
    run_entry_point,
)
from tests.support.registry import Registry, push, running_registry

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

STACK_DIR = layout.HOST_STACK_ROOT
MLFLOW_API = "/api/2.0/mlflow"
AUTH = (layout.MLFLOW_ADMIN_USER, MLFLOW_PASSWORD)
ROW = [5.1, 3.5, 1.4, 0.2]


def report(capsys: pytest.CaptureFixture[str], message: str) -> None:
    with capsys.disabled():
        print(f"\n[e2e] {message}", flush=True)


def mlflow(port: int, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(
        method, f"http://127.0.0.1:{port}{MLFLOW_API}{path}", auth=AUTH, timeout=15, **kwargs
    )
    response.raise_for_status()
    return response.json()


def registry_state(port: int) -> dict[str, Any]:
    """Run ids, model versions and the champion: what a restore must bring back."""
    experiments = mlflow(port, "POST", "/experiments/search", json={"max_results": 1000})["experiments"]
    ids = [experiment["experiment_id"] for experiment in experiments]
    runs = mlflow(port, "POST", "/runs/search", json={"experiment_ids": ids, "max_results": 1000}).get(
        "runs", []
    )
    versions = mlflow(
        port, "GET", "/model-versions/search", params={"filter": f"name='{DEFAULT_MODEL_NAME}'"}
    )
    alias = mlflow(
        port, "GET", "/registered-models/alias", params={"name": DEFAULT_MODEL_NAME, "alias": CHAMPION_ALIAS}
    )
    return {
        "runs": sorted(run["info"]["run_id"] for run in runs),
        "versions": sorted(version["version"] for version in versions.get("model_versions", [])),
        "champion": alias["model_version"]["version"],
        "experiment": ids[0],
    }


def served_version(provisioned: ProvisionedHost, timeout: float = 120) -> str:
    """The model version the API answers with, through the edge. The edge's certificate was
    verified in test_provisioning.py; here it may be the ACME one its last test installed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.post(
                f"https://127.0.0.1:{provisioned.host.https_port}/predict",
                json={"features": ROW},
                verify=False,
                timeout=10,
            )
            if response.status_code == 200:
                assert response.json()["prediction"] == "setosa"
                return str(response.json()["model"]["version"])
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the API does not answer through the edge")
        time.sleep(2)


def backup_command(provisioned: ProvisionedHost, *args: str) -> ProvisionRun:
    command = [sys.executable, "-m", "stacks.backup", *args, "--host", "127.0.0.1",
               "--port", str(provisioned.host.ssh_port), "--user", testhost.DEPLOY_USER]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=testhost.REPO_ROOT,
        env=provisioned.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return ProvisionRun(result.returncode, result.stdout + result.stderr, time.monotonic() - started)


def compose(provisioned: ProvisionedHost, command: str) -> str:
    return str(provisioned.host.exec("bash", "-c", f"cd {STACK_DIR} && docker compose {command}"))


@pytest.fixture(autouse=True)
def _no_insecure_warnings() -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def test_the_blank_data_disk_was_formatted_once_and_holds_dockers_data(provisioned: ProvisionedHost) -> None:
    assert provisioned.first_run.returncode == 0, provisioned.first_run.output[-3000:]
    assert "changed   Format the blank data disk as ext4" in provisioned.first_run.output
    host = provisioned.host
    source, fstype = host.exec("findmnt", "--noheadings", "--output", "SOURCE,FSTYPE",
                               layout.DATA_DISK_MOUNT_POINT).split()  # fmt: skip
    assert (source, fstype) == (host.data_device, "ext4")
    fstab = host.exec("cat", "/etc/fstab")
    assert (
        f"{layout.DATA_DISK_DEVICE_PATH} {layout.DATA_DISK_MOUNT_POINT} ext4 discard,defaults,nofail 0 2"
        in fstab
    )
    assert host.inner_docker("info", "--format", "{{.DockerRootDir}}") == DOCKER_DATA_ROOT
    volume = host.inner_docker(
        "volume", "inspect", "--format", "{{.Mountpoint}}", f"{layout.COMPOSE_PROJECT}_mlflow-db"
    )
    assert volume.startswith(DOCKER_DATA_ROOT + "/")
    # The stack's files too: the stack root is a link into the disk.
    stack_mount = host.exec("findmnt", "--noheadings", "--output", "TARGET", "--target", STACK_DIR)
    assert stack_mount == layout.DATA_DISK_MOUNT_POINT


def test_a_backup_restores_runs_versions_and_the_champion_the_api_serves(
    provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    host = provisioned.host
    timer = host.exec("systemctl", "show", "mlops-backup.timer", "--property", "Persistent,UnitFileState")
    assert sorted(timer.splitlines()) == ["Persistent=yes", "UnitFileState=enabled"]
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        marker = mlflow(
            port, "POST", "/runs/create", json={"experiment_id": registry_state(port)["experiment"]}
        )
        before = registry_state(port)
        assert marker["run"]["info"]["run_id"] in before["runs"]
        started = time.monotonic()
        host.exec("systemctl", "start", "mlops-backup.service")  # a oneshot: returns when done
        backup_seconds = time.monotonic() - started
        journal = host.exec("journalctl", "--unit", "mlops-backup.service", "--no-pager", "--output", "cat")
        assert "mlops-backup: " in journal
        assert "done in" in journal
        assert MLFLOW_PASSWORD not in journal
        # A run after the backup: the restore must drop it.
        later = mlflow(port, "POST", "/runs/create", json={"experiment_id": before["experiment"]})
    listed = backup_command(provisioned, "list")
    assert listed.returncode == 0, listed.output[-3000:]
    ids = [line for line in listed.output.splitlines() if line[:8].isdigit() and line.endswith("Z")]
    assert len(ids) == 1, listed.output
    archive = host.exec("ls", BACKUP_DIR)
    assert archive == f"mlops-backup-{ids[0]}.tar.gz"
    # The backup job's last success reaches Prometheus (node-exporter's textfile collector).
    with provisioned.tunnel(SERVICES.prometheus.port) as port:
        (success,) = wait_for_series(port, 'mlops_backup_last_success_timestamp_seconds{job="node-exporter"}')
    assert abs(float(success["value"][1]) - time.time()) < 600

    # Wipe MLflow's data (database and artifacts), then restore the newest backup.
    compose(provisioned, "stop mlflow")
    compose(provisioned, "run --rm --no-deps --no-TTY --entrypoint sh mlflow -c "
                         "'rm -rf /mlflow/db/mlflow.db /mlflow/artifacts/*'")  # fmt: skip
    restored = backup_command(provisioned, "restore")
    report(capsys, f"backup {backup_seconds:.0f} s, restore {restored.seconds:.0f} s")
    assert restored.returncode == 0, restored.output[-5000:]
    assert f"restored backup {ids[0]}" in restored.output
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        after = registry_state(port)
    assert after == before
    assert later["run"]["info"]["run_id"] not in after["runs"]
    assert served_version(provisioned) == before["champion"]


def test_restoring_an_unknown_backup_id_fails_clearly(provisioned: ProvisionedHost) -> None:
    run = backup_command(provisioned, "restore", "--backup", "20000101T000000Z")
    assert run.returncode == 1
    assert f"unknown backup id '20000101T000000Z' at {BACKUP_DIR}" in run.output


def test_a_replaced_vm_keeps_the_registry_on_its_data_disk_and_trains_nothing(
    provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        before = registry_state(port)
    run = provisioned.replace_host(f"{provisioned.host.name}-replaced")
    report(capsys, f"replacement host provisioned in {run.seconds:.0f} s")
    assert run.returncode == 0, run.output[-5000:]
    lines = run.output.splitlines()
    assert any(line.startswith("skipped") and "Format the blank data disk" in line for line in lines)
    assert any(line.startswith("skipped") and "Train and register the first model" in line for line in lines)
    # Docker's data root came with the disk: no image had to be copied and loaded again.
    assert not any(line.startswith("changed") and "Load the images into Docker" in line for line in lines)
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        assert registry_state(port) == before
    assert served_version(provisioned) == before["champion"]


# The repository `make release` pushes to ends in this name (LOCATION-docker.pkg.dev/PROJECT/...).
RELEASE_REPOSITORY = "mlops-images"


def release_to(registry: Registry, host_address: str) -> dict[str, str]:
    """Push every own image built here, as `make release` would; the digests map names the
    registry as the host reaches it (a digest is the same whatever host name the reference uses)."""
    digests = {}
    for image in OWN_IMAGES:
        path = released_repository(image, RELEASE_REPOSITORY)
        digests[image.name] = f"{host_address}:{registry.port}/{path}@{push(image.name, registry, path)}"
    return digests


def trust_registry_ca(host: testhost.TestHost, registry: Registry, host_address: str) -> None:
    """Docker on the host trusts the registry's CA for that registry only (read per pull)."""
    assert registry.ca_file
    certs_dir = f"/etc/docker/certs.d/{host_address}:{registry.port}"
    host.exec("mkdir", "-p", certs_dir)
    host.exec("tee", f"{certs_dir}/ca.crt", input_text=registry.ca_file.read_text())


def test_registry_delivery_runs_the_released_digests_pulled_from_a_registry(
    provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    host = provisioned.host
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        before = registry_state(port)
    gateway = host.gateway()
    with running_registry(tmp_path / "registry", tls_addresses=[gateway]) as registry:
        started = time.monotonic()
        digests = release_to(registry, gateway)
        report(capsys, f"own images pushed to the local registry in {time.monotonic() - started:.0f} s")
        trust_registry_ca(host, registry, gateway)
        extra = ["--image-delivery", "registry", "--image-digests", to_json(digests)]
        run = run_entry_point(host, provisioned.env, extra)
    report(capsys, f"provisioned by registry delivery in {run.seconds:.0f} s")
    assert run.returncode == 0, run.output[-5000:]
    lines = run.output.splitlines()
    pulled = [line for line in lines if "Pull the own images the host lacks" in line]
    assert pulled, run.output[-5000:]
    assert not any(line.startswith("skipped") for line in pulled)
    assert any(line.startswith("skipped") and "Train and register the first model" in line for line in lines)

    env_lines = host.exec("cat", f"{STACK_DIR}/.env").splitlines()
    for variable, reference in compose_variables(digests).items():
        assert f"{variable}={reference}" in env_lines
    local_ids = {name: testhost.docker("image", "inspect", "--format", "{{.Id}}", name) for name in digests}
    for service, image in ((SERVICES.api.name, API_IMAGE), (SERVICES.mlflow.name, MLFLOW_IMAGE),
                           (edge.SERVICE_NAME, EDGE_IMAGE)):  # fmt: skip
        container = compose(provisioned, f"ps --quiet {service}")
        assert container, f"{service} is not running"
        assert host.inner_docker("inspect", "--format", "{{.Config.Image}}", container) == digests[image]
        assert host.inner_docker("inspect", "--format", "{{.Image}}", container) == local_ids[image]
    # The trainer runs once, on a fresh stack only: its pinned image is kept all the same (no
    # container holds it, and the prune after the deploy must not take it for dangling).
    trainer = host.inner_docker("image", "inspect", "--format", "{{.Id}}", digests[TRAINER_IMAGE])
    assert trainer == local_ids[TRAINER_IMAGE]

    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        assert registry_state(port) == before
    assert served_version(provisioned) == before["champion"]
