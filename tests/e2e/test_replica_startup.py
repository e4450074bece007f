"""End to end: an API replica's startup path (apiReplicas > 1), run for real on a fresh test host.

GCE would run the rendered startup script (stacks/replica_startup.py) on a new instance of the
group. Here a FRESH test host (the same image as the main one: Debian 13 with systemd, no Docker,
no Ansible) runs it as root, with:
- the API image in a local TLS registry, by digest, as Artifact Registry holds it (the host trusts
  the registry's test CA, as a VM trusts Artifact Registry's public certificate);
- stand-ins for the metadata server's token endpoint and Secret Manager (tests/support/gcp_standins.py:
  the token is a registry credential of the test, the secret the main host's real password of
  MLflow's `api` user);
- MLflow of the session's main test host, provisioned again with `--mlflow-bind-address` (what the
  Pulumi program passes when the stack scales out): MLflow published on the management VM's address
  besides loopback. (No GCP firewall here: on GCP a rule admits only the replicas to that port.)

Runs after test_recovery.py on the same session host (fixture `provisioned`); this provisioning
run leaves MLflow published on the host's address for the rest of the session.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import urllib3

from config import stack_layout as layout
from config.services import API_IMAGE, SERVICES
from stacks.api_scale_out import ReplicaStartup
from stacks.provision_env import mlflow_api_password
from stacks.replica_startup import CONTAINER_NAME, startup_script
from tests.support import testhost
from tests.support.gcp_standins import TOKEN_PATH, GcpStandIn, serving
from tests.support.provisioned import MLFLOW_PASSWORD, ProvisionedHost, run_entry_point
from tests.support.registry import push, running_registry

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ROW = [5.1, 3.5, 1.4, 0.2]
RELEASE_PATH = "mlops-images/replica-api"
SECRET_VERSION = "projects/e2e-project/secrets/mlops-api-mlflow-password/versions/1"
# Where a secret could be left behind on the replica. Docker's own state is not scanned: it keeps a
# container's environment (root only) in /var/lib/docker, /run/docker and /run/containerd, as it
# does for the compose service's env file on the management VM.
SCANNED_DIRS = ("/etc", "/root", "/run", "/tmp", "/var/tmp", "/var/log", "/home", "/opt")
DOCKER_STATE = ("--exclude-dir=containerd", "--exclude-dir=docker")


def report(capsys: pytest.CaptureFixture[str], message: str) -> None:
    with capsys.disabled():
        print(f"\n[e2e] {message}", flush=True)


@contextmanager
def fresh_host(name: str) -> Iterator[testhost.TestHost]:
    """A new test host as a new GCE instance boots: no Docker, no Ansible. Docker's data root gets a
    volume of its own (it cannot live on the container's overlay filesystem; on GCE it is the boot
    disk's ext4)."""
    volume = f"{name}-docker"
    testhost.docker("run", "-d", "--name", name, "--hostname", name, *testhost.SYSTEMD_FLAGS,
                    "-v", f"{volume}:/var/lib/docker", testhost.TESTHOST_IMAGE)  # fmt: skip
    host = testhost.TestHost(name, data_device=None, volume=volume, ssh_port=0, https_port=0, http_port=0)
    try:
        host.wait_for_systemd()
        yield host
    finally:
        host.remove()


def run_startup_script(
    host: testhost.TestHost, script: str, stand_in: GcpStandIn
) -> subprocess.CompletedProcess[str]:
    """As GCE runs it: root, bash, the script on stdin; the two endpoints point at the stand-ins."""
    return subprocess.run(
        [testhost.DOCKER, "exec", "-i",
         "-e", f"{layout.METADATA_TOKEN_URL_VARIABLE}={stand_in.token_url}",
         "-e", f"{layout.SECRET_MANAGER_URL_VARIABLE}={stand_in.secret_manager_url}",
         host.name, "bash", "-s"],
        input=script, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


def wait_until_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"{url}/ready never answered 200")


def predict(url: str, verify: bool = True) -> dict[str, object]:
    response = requests.post(f"{url}/predict", json={"features": ROW}, timeout=10, verify=verify)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    assert body["prediction"] == "setosa"
    return body


def expose_mlflow(provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str]) -> str:
    """Provision the main host again as the program does for a stack that scales out."""
    address = provisioned.host.address()
    run = run_entry_point(provisioned.host, provisioned.env, ["--mlflow-bind-address", address])
    report(capsys, f"main host provisioned with MLflow on {address} in {run.seconds:.0f} s")
    assert run.returncode == 0, run.output[-5000:]
    env_lines = provisioned.host.exec("cat", f"{layout.HOST_STACK_ROOT}/.env").splitlines()
    assert f"{layout.MLFLOW_BIND_VARIABLE}={address}" in env_lines
    return address


def replica_container(host: testhost.TestHost) -> list[str]:
    return host.inner_docker("ps", "--all", "--quiet", "--filter", f"name=^{CONTAINER_NAME}$").split()


def test_a_fresh_host_runs_the_startup_script_and_serves_the_champion(
    provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    main = provisioned.host
    assert provisioned.first_run.returncode == 0, provisioned.first_run.output[-5000:]
    champion = predict(f"https://127.0.0.1:{main.https_port}", verify=False)["model"]
    mlflow_address = expose_mlflow(provisioned, capsys)
    gateway = main.gateway()
    password = mlflow_api_password(MLFLOW_PASSWORD)
    stand_in = GcpStandIn(token="e2e-token-" + os.urandom(12).hex(), secret_version=SECRET_VERSION,
                          secret_value=password)  # fmt: skip
    with (
        running_registry(tmp_path / "registry", tls_addresses=[gateway]) as registry,
        serving(stand_in, gateway),
        fresh_host(f"mlops-e2e-replica-{os.getpid()}") as replica,
    ):
        registry_host = f"{gateway}:{registry.port}"
        image = f"{registry_host}/{RELEASE_PATH}@{push(API_IMAGE, registry, RELEASE_PATH)}"
        assert registry.ca_file
        replica.exec("mkdir", "-p", f"/etc/docker/certs.d/{registry_host}")
        replica.exec(
            "tee", f"/etc/docker/certs.d/{registry_host}/ca.crt", input_text=registry.ca_file.read_text()
        )
        script = startup_script(
            ReplicaStartup(
                api_image=image,
                registry_logins=(registry_host,),
                mlflow_url=f"http://{mlflow_address}:{SERVICES.mlflow.port}",
                password_secret_version=SECRET_VERSION,
            )
        )
        assert password not in script
        assert stand_in.token not in script

        started = time.monotonic()
        first = run_startup_script(replica, script, stand_in)
        assert first.returncode == 0, first.stdout + first.stderr
        url = f"http://{replica.address()}:{SERVICES.api.port}"
        wait_until_ready(url)
        report(
            capsys,
            f"fresh host serving /ready {time.monotonic() - started:.0f} s after its startup script began",
        )
        served = predict(url)
        assert served["model"] == champion, "the replica serves another model than the main host"

        # The token fetched with the metadata header, then used for the secret: nothing else asked.
        assert stand_in.requests == [(TOKEN_PATH, 200), (f"/v1/{SECRET_VERSION}:access", 200)]
        (container,) = replica_container(replica)
        hardening = "{{.Config.Image}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}"
        inspect = replica.inner_docker("inspect", "--format", hardening, container)
        assert inspect == f"{image} true [ALL]"

        # Nothing secret in the script's output, in Docker's login config or in the host's files.
        for secret in (password, stand_in.token):
            assert secret not in first.stdout + first.stderr
        assert registry_host not in replica.exec("cat", "/root/.docker/config.json", check=False)
        found = replica.exec("grep", "-rlsF", *DOCKER_STATE, "-f", "-", *SCANNED_DIRS, check=False,
                             input_text=f"{password}\n{stand_in.token}\n")  # fmt: skip
        assert found == "", f"a secret was left in {found}"

        # Idempotent: the next boot runs the script again and finds the same container.
        second = run_startup_script(replica, script, stand_in)
        assert second.returncode == 0, second.stdout + second.stderr
        assert replica_container(replica) == [container]
        assert "already runs this spec" in second.stderr
        wait_until_ready(url)
        assert predict(url)["model"] == champion
