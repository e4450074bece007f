"""End to end: a local Debian 13 test host (systemd, sshd, key-only) plays the GCP VM and is
provisioned by `python -m stacks.provision`, the command `pulumi up` runs, with the same env vars.

What a build machine without registry access cannot give, and what stands in for it (docs/TESTING.md):
- No registry pulls: the repo's images (api, mlflow, trainer) are built here from app/Dockerfile and
  deploy/ on a debootstrap Python base and reach the host as an image archive - the default,
  supported delivery. Prometheus is TEST ONLY built from Debian's package and tagged with the
  catalog's pinned `prom/prometheus` name (tests/support/prometheus_image/Dockerfile).
- No Grafana image exists anywhere here: provisioning runs `--without grafana`; Grafana's
  provisioning files are validated and shown to be laid out and mounted by the compose config,
  but the Grafana container itself is not started.
Tests run in file order on one provisioned host (fixture `provisioned` in conftest.py).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from config import edge
from config import stack_layout as layout
from config.services import SERVICES
from stacks.provision import known_hosts_lines, scan_host_keys
from stacks.provision_env import mlflow_api_password, mlflow_promoter_password, mlflow_trainer_password
from tests.support.acme import running_acme
from tests.support.provisioned import GRAFANA_PASSWORD, MLFLOW_PASSWORD, ProvisionedHost, run_entry_point
from tests.support.secret_scan import SecretScan
from tests.support.testhost import TestHost

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

KNOWN_ROWS = [
    ([5.1, 3.5, 1.4, 0.2], "setosa"),
    ([6.7, 3.0, 5.2, 2.3], "virginica"),
    ([5.9, 3.0, 4.2, 1.5], "versicolor"),
]
STACK_DIR = "/opt/mlops"
SUMMARY = re.compile(r"provision: ok=(\d+) changed=(\d+) failed=(\d+) unreachable=(\d+)")


def report(capsys: pytest.CaptureFixture[str], message: str) -> None:
    with capsys.disabled():
        print(f"\n[e2e] {message}", flush=True)


def summary(output: str) -> dict[str, int]:
    match = SUMMARY.search(output)
    assert match, f"no summary line in:\n{output[-3000:]}"
    return dict(zip(("ok", "changed", "failed", "unreachable"), map(int, match.groups()), strict=True))


@pytest.fixture(scope="module")
def edge_ca(provisioned: ProvisionedHost, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return provisioned.host.edge_certificate(tmp_path_factory.mktemp("edge"))


def predict(host: TestHost, ca: Path, features: list[float], timeout: float = 5) -> str:
    """Through the edge, over HTTPS verified against the certificate the edge made on the host."""
    response = requests.post(
        f"https://127.0.0.1:{host.https_port}/predict",
        json={"features": features},
        verify=str(ca),
        timeout=timeout,
    )
    response.raise_for_status()
    return str(response.json()["prediction"])


def compose(provisioned: ProvisionedHost, *args: str) -> str:
    return str(provisioned.host.exec("bash", "-c", f"cd {STACK_DIR} && docker compose {' '.join(args)}"))


def container_health(provisioned: ProvisionedHost, service: str) -> str:
    return str(
        provisioned.host.inner_docker(
            "inspect", "--format", "{{.State.Health.Status}}", f"mlops-{service}-1", check=False
        )
    )


def wait_healthy(provisioned: ProvisionedHost, service: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container_health(provisioned, service) == "healthy":
            return
        time.sleep(2)
    raise AssertionError(f"{service} not healthy after {timeout} s")


def mlflow_get(port: int, path: str, auth: tuple[str, str] | None = ("admin", MLFLOW_PASSWORD)) -> Any:
    return requests.get(f"http://127.0.0.1:{port}{path}", auth=auth, timeout=10)


def test_first_provisioning_succeeds(
    provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    run = provisioned.first_run
    report(capsys, f"first provisioning run: {run.seconds:.0f} s (images built/archived, Docker installed)")
    assert run.returncode == 0, run.output[-5000:]
    assert "provision: done" in run.output
    totals = summary(run.output)
    assert totals["changed"] > 0
    assert totals["failed"] == 0


def test_secrets_never_in_output_and_nothing_left_on_disk(provisioned: ProvisionedHost) -> None:
    output = provisioned.first_run.output
    assert MLFLOW_PASSWORD not in output
    assert GRAFANA_PASSWORD not in output
    assert "PRIVATE KEY" not in output
    # The temporary private data dir (known_hosts, artifacts, key FIFO) is gone after the run.
    assert not list(Path("/tmp").glob("mlops-provision-*"))


def test_secrets_reach_the_host_only_as_0600_files(provisioned: ProvisionedHost) -> None:
    listing = provisioned.host.exec("stat", "-c", "%n %a %u", *(
        f"{STACK_DIR}/secrets/{name}"
        for name in (
            "mlflow_admin_password", "grafana_admin_password", "mlflow-client.env",
            layout.MLFLOW_API_SECRET, layout.MLFLOW_API_CLIENT_ENV_FILE,
        )
    ))  # fmt: skip
    for line in listing.splitlines():
        _name, mode, _uid = line.split()
        assert mode == "600", line
    assert provisioned.host.exec("cat", f"{STACK_DIR}/secrets/mlflow_admin_password") == MLFLOW_PASSWORD
    # Not in the compose file, not in the containers' configuration (docker inspect).
    assert MLFLOW_PASSWORD not in provisioned.host.exec("cat", f"{STACK_DIR}/compose.yml")
    assert MLFLOW_PASSWORD not in provisioned.host.inner_docker("inspect", "mlops-mlflow-1")


def test_predict_returns_the_right_classes_through_the_edge(
    provisioned: ProvisionedHost, edge_ca: Path
) -> None:
    for features, expected in KNOWN_ROWS:
        assert predict(provisioned.host, edge_ca, features) == expected


def test_http_redirects_to_https_and_metrics_stay_private(
    provisioned: ProvisionedHost, edge_ca: Path
) -> None:
    host = provisioned.host
    redirect = requests.get(f"http://127.0.0.1:{host.http_port}/predict", allow_redirects=False, timeout=10)
    assert redirect.status_code == 308
    assert redirect.headers["Location"].startswith("https://")
    metrics = requests.get(f"https://127.0.0.1:{host.https_port}/metrics", verify=str(edge_ca), timeout=10)
    assert metrics.status_code == 404
    assert metrics.json()["error"]["reason"] == "not_found"


def test_every_service_is_healthy_and_hardened(provisioned: ProvisionedHost) -> None:
    for service in ("api", "mlflow", "prometheus", edge.SERVICE_NAME):
        assert container_health(provisioned, service) == "healthy"
        inspect = json.loads(provisioned.host.inner_docker("inspect", f"mlops-{service}-1"))[0]
        host_config = inspect["HostConfig"]
        assert "no-new-privileges:true" in host_config["SecurityOpt"]
        assert host_config["ReadonlyRootfs"] is True
        assert host_config["Memory"] > 0
        assert host_config["PidsLimit"] > 0
        assert host_config["NanoCpus"] > 0
        assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
        assert inspect["Config"]["User"] not in ("", "0", "root")
        assert not any("docker.sock" in mount["Source"] for mount in inspect["Mounts"])
        assert host_config["CapDrop"] == ["ALL"], service
        assert not host_config.get("CapAdd"), service
        published = {
            port: [b["HostIp"] for b in bindings] for port, bindings in host_config["PortBindings"].items()
        }
        if service == edge.SERVICE_NAME:  # the only service on every interface, on its two ports
            assert published == {f"{edge.HTTP_PORT}/tcp": ["0.0.0.0"], f"{edge.HTTPS_PORT}/tcp": ["0.0.0.0"]}
        elif service == SERVICES.api.name:  # served through the edge only
            assert published == {}
        else:
            assert published == {f"{SERVICES.by_name(service).port}/tcp": ["127.0.0.1"]}, service


def test_prometheus_on_the_host_reports_the_api_target_up(provisioned: ProvisionedHost) -> None:
    with provisioned.tunnel(SERVICES.prometheus.port) as port:
        deadline = time.monotonic() + 90
        targets: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            body = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=10).json()
            targets = body["data"]["activeTargets"]
            api = [t for t in targets if t["labels"].get("job") == "api"]
            if api and all(t["health"] == "up" for t in api):
                return
            time.sleep(3)
        raise AssertionError(f"api target not up: {targets}")


def test_mlflow_answers_and_lists_the_registered_model(provisioned: ProvisionedHost) -> None:
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        assert mlflow_get(port, "/health", auth=None).status_code == 200
        # Basic auth is on: no anonymous access, no default password.
        assert mlflow_get(port, "/api/2.0/mlflow/registered-models/search", auth=None).status_code == 401
        assert (
            mlflow_get(
                port, "/api/2.0/mlflow/registered-models/search", ("admin", "password1234")
            ).status_code
            == 401
        )
        models = mlflow_get(port, "/api/2.0/mlflow/registered-models/search").json()["registered_models"]
        assert "iris-classifier" in {model["name"] for model in models}
        # Search results leave aliases out; `get` has them.
        model = mlflow_get(port, "/api/2.0/mlflow/registered-models/get?name=iris-classifier").json()
        aliases = {a["alias"] for a in model["registered_model"].get("aliases", [])}
        assert "champion" in aliases


def test_the_api_reads_mlflow_as_its_own_read_only_user(provisioned: ProvisionedHost) -> None:
    api_env = json.loads(
        provisioned.host.inner_docker("inspect", "--format", "{{json .Config.Env}}", "mlops-api-1")
    )
    assert f"MLFLOW_TRACKING_USERNAME={layout.MLFLOW_API_USER}" in api_env
    # The public container never holds the admin's password.
    assert MLFLOW_PASSWORD not in provisioned.host.inner_docker("inspect", "mlops-api-1")
    reader = (layout.MLFLOW_API_USER, mlflow_api_password(MLFLOW_PASSWORD))
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        model = mlflow_get(port, "/api/2.0/mlflow/registered-models/get?name=iris-classifier", reader)
        assert model.status_code == 200
        user = mlflow_get(port, f"/api/2.0/mlflow/users/get?username={layout.MLFLOW_API_USER}").json()
        assert user["user"]["is_admin"] is False
        # It may change nothing that exists: not the champion alias, not a model, not a user.
        # (MLflow's auth lets any signed-in user create a new experiment or model of its own.)
        writes = {
            "registered-models/alias": {"name": "iris-classifier", "alias": "champion", "version": "1"},
            "registered-models/set-tag": {"name": "iris-classifier", "key": "by", "value": "api"},
            "users/create": {"username": "intruder", "password": "intruder-password-1234"},
        }
        for path, body in writes.items():
            refused = requests.post(
                f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}", json=body, auth=reader, timeout=10
            )
            assert refused.status_code == 403, (path, refused.status_code, refused.text)
        deleted = requests.delete(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/delete",
            json={"name": "iris-classifier"},
            auth=reader,
            timeout=10,
        )
        assert deleted.status_code == 403, deleted.text


def test_the_trainer_and_the_promoter_are_mlflow_users_that_are_no_admins(
    provisioned: ProvisionedHost,
) -> None:
    # The trainer that registered the first model logged in with this file: its own user.
    client_env = provisioned.host.exec(
        "cat", f"{STACK_DIR}/{layout.SECRETS_DIR}/{layout.MLFLOW_CLIENT_ENV_FILE}"
    )
    assert f"MLFLOW_TRACKING_USERNAME={layout.MLFLOW_TRAINER_USER}" in client_env.splitlines()
    assert MLFLOW_PASSWORD not in client_env
    logins = {
        layout.MLFLOW_TRAINER_USER: mlflow_trainer_password(MLFLOW_PASSWORD),
        layout.MLFLOW_PROMOTER_USER: mlflow_promoter_password(MLFLOW_PASSWORD),
    }
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        for user, password in logins.items():
            assert mlflow_get(port, "/api/2.0/mlflow/users/current", (user, password)).status_code == 200, (
                user
            )
            found = mlflow_get(port, f"/api/2.0/mlflow/users/get?username={user}").json()
            assert found["user"]["is_admin"] is False, user


def test_grafana_is_provisioned_from_files(
    provisioned: ProvisionedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """Grafana cannot run here (no image can be had: not in Debian, PyPI or npm, and no registry).

    Shown instead: its provisioning files and dashboards are laid out on the host, valid, point at
    the stack's Prometheus by service name, and the compose config mounts them with the password
    file; the container is not started.
    """
    report(capsys, "Grafana: files validated and mounts shown; the container cannot run here (no image)")
    root = f"{STACK_DIR}/config/grafana/provisioning"
    datasources = yaml.safe_load(provisioned.host.exec("cat", f"{root}/datasources/prometheus.yml"))
    prometheus = SERVICES.prometheus
    assert datasources["datasources"][0]["url"] == f"http://{prometheus.name}:{prometheus.port}"
    provider = yaml.safe_load(provisioned.host.exec("cat", f"{root}/dashboards/provider.yml"))
    dashboards_path = provider["providers"][0]["options"]["path"]
    for name in provisioned.host.exec("ls", f"{STACK_DIR}/dashboards").split():
        dashboard = json.loads(provisioned.host.exec("cat", f"{STACK_DIR}/dashboards/{name}"))
        assert dashboard["uid"]
    config = json.loads(compose(provisioned, "--profile", "grafana", "config", "--format", "json"))
    grafana = config["services"]["grafana"]
    targets = {volume["target"]: volume for volume in grafana["volumes"]}
    assert targets["/etc/grafana/provisioning"]["source"] == f"{STACK_DIR}/config/grafana/provisioning"
    assert targets[dashboards_path]["source"] == f"{STACK_DIR}/dashboards"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert grafana["ports"][0]["host_ip"] == "127.0.0.1"
    assert "grafana" not in compose(provisioned, "ps", "--services")


def test_second_run_changes_nothing_while_the_api_keeps_answering(
    provisioned: ProvisionedHost, edge_ca: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = edge_ca
    errors: list[str] = []
    answered = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                assert predict(provisioned.host, ca, KNOWN_ROWS[0][0]) == "setosa"
                answered += 1
            except (requests.RequestException, AssertionError) as error:
                errors.append(repr(error))
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    secrets = [MLFLOW_PASSWORD, GRAFANA_PASSWORD]
    secrets += [
        derive(MLFLOW_PASSWORD)
        for derive in (mlflow_api_password, mlflow_trainer_password, mlflow_promoter_password)
    ]
    # The private key's base64 body, line by line (any line of it would be a leak).
    secrets += [line for line in provisioned.env["MLOPS_SSH_PRIVATE_KEY"].splitlines() if "---" not in line]
    try:
        with SecretScan(secrets) as scan:
            run = provisioned.provision()
    finally:
        stop.set()
        poller.join(timeout=10)
    report(
        capsys,
        f"second provisioning run: {run.seconds:.0f} s; API answered {answered} times meanwhile; "
        f"{scan.scans} scans of the run's private data dir found no secret",
    )
    assert run.returncode == 0, run.output[-5000:]
    # The scans overlapped the run (they saw ansible-runner's record of its command and
    # environment), and no file of the run held a secret at any moment.
    assert scan.command_files
    assert not scan.findings, scan.findings[:5]
    totals = summary(run.output)
    changed_lines = [line for line in run.output.splitlines() if line.startswith("changed ")]
    assert totals["changed"] == 0, run.output
    assert not changed_lines
    assert answered > 0
    assert not errors, errors[:5]


def test_a_wrong_host_key_is_refused(provisioned: ProvisionedHost, tmp_path: Path) -> None:
    """Host key checking is on: a host presenting another key than the one given is not trusted."""
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    fields = other_key.with_suffix(".pub").read_text(encoding="utf-8").split()
    env = {**provisioned.env, "MLOPS_SSH_HOST_KEY": f"{fields[0]} {fields[1]}"}
    run = run_entry_point(provisioned.host, env)
    assert run.returncode == 1
    assert "provision: FAILED" in run.output
    assert "Host key verification failed" in run.output


def test_first_contact_records_the_host_key_the_host_presents(provisioned: ProvisionedHost) -> None:
    """Without MLOPS_SSH_HOST_KEY the entry point pins what ssh-keyscan reads on first contact."""
    scanned = scan_host_keys("127.0.0.1", provisioned.host.ssh_port)
    lines = known_hosts_lines("127.0.0.1", provisioned.host.ssh_port, scanned)
    assert lines == [f"[127.0.0.1]:{provisioned.host.ssh_port} {provisioned.host.host_key()}"]


def test_the_timeout_stops_a_run_with_its_own_exit_code(provisioned: ProvisionedHost) -> None:
    command = [
        sys.executable, "-m", "stacks.provision", "--host", "127.0.0.1",
        "--port", str(provisioned.host.ssh_port), "--user", "deploy", "--without", "grafana",
        "--timeout", "3",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=Path(__file__).resolve().parents[2],
        env=provisioned.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 124, result.stdout[-3000:]
    assert "timed out after 3 s" in result.stdout


def test_killed_api_container_comes_back_healthy_by_itself(
    provisioned: ProvisionedHost, edge_ca: Path
) -> None:
    host = provisioned.host
    before = int(host.inner_docker("inspect", "--format", "{{.RestartCount}}", "mlops-api-1"))
    pid = host.inner_docker("inspect", "--format", "{{.State.Pid}}", "mlops-api-1")
    host.exec("kill", "-KILL", pid)  # a crash, not `docker stop` (which restart policies respect)
    time.sleep(2)
    wait_healthy(provisioned, "api")
    after = int(host.inner_docker("inspect", "--format", "{{.RestartCount}}", "mlops-api-1"))
    assert after == before + 1
    # Through the edge again: it re-resolves the restarted container's address.
    assert predict(host, edge_ca, KNOWN_ROWS[1][0]) == KNOWN_ROWS[1][1]


def test_mlflow_data_survives_recreating_its_container(provisioned: ProvisionedHost) -> None:
    compose(provisioned, "rm", "--stop", "--force", "mlflow")
    compose(provisioned, "up", "--detach", "mlflow")
    wait_healthy(provisioned, "mlflow")
    with provisioned.tunnel(SERVICES.mlflow.port) as port:
        version = mlflow_get(
            port, "/api/2.0/mlflow/registered-models/alias?name=iris-classifier&alias=champion"
        )
        assert version.status_code == 200, version.text
        assert version.json()["model_version"]["name"] == "iris-classifier"


E2E_DOMAIN = "e2e.mlops.test"


def _served_certificate(host: TestHost, root_ca: Path) -> Any:
    """The certificate the edge presents for E2E_DOMAIN, verified against `root_ca` (raises if not)."""
    context = ssl.create_default_context(cafile=str(root_ca))
    with (
        socket.create_connection(("127.0.0.1", host.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=E2E_DOMAIN) as conn,
    ):
        return conn.getpeercert()


def test_with_a_domain_the_edge_gets_its_certificate_over_acme(
    provisioned: ProvisionedHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last, as it changes the edge's certificate: provisioned again with a domain, the edge gets a
    certificate from pebble (Let's Encrypt's test server, on this machine), which validates the
    HTTP-01 challenge on the host's port 80 through the edge, as Let's Encrypt would."""
    host = provisioned.host
    with running_acme(
        edge.PUBLIC_HTTP_PORT, tmp_path / "pebble", listen=host.gateway(), names_resolve_to=host.address()
    ) as acme:
        options = ["--domain", E2E_DOMAIN, "--acme-server", acme.directory_url]
        run = run_entry_point(host, provisioned.env, [*options, "--acme-ca-file", str(acme.tls_certificate)])
        assert run.returncode == 0, run.output[-5000:]
        root_ca = acme.root_certificate(tmp_path / "pebble-root.pem")
        started, certificate = time.monotonic(), None
        while certificate is None and time.monotonic() - started < 180:
            try:
                certificate = _served_certificate(host, root_ca)
            except (ssl.SSLError, OSError):
                time.sleep(2)
    assert certificate is not None, host.inner_docker("logs", "--tail", "40", "mlops-edge-1")
    report(capsys, f"ACME: pebble's certificate served {time.monotonic() - started:.0f} s after provisioning")
    assert ("DNS", E2E_DOMAIN) in certificate["subjectAltName"]
    redirect = requests.get(
        f"http://127.0.0.1:{host.http_port}/predict",
        headers={"Host": E2E_DOMAIN},
        allow_redirects=False,
        timeout=10,
    )
    assert redirect.status_code == 308
    assert redirect.headers["Location"] == f"https://{E2E_DOMAIN}/predict"
